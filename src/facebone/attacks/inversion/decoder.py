"""Learned inversion: a decoder from template to face (after NbNet, Mai et al., TPAMI 2019).

A fully connected layer lifts the template to a (size/16)^2 x 256 map, four up-sampling
blocks (nearest x2, 3x3 convolution, batch norm, leaky ReLU; NbNet's "neighbourly" blocks
without their dense links) grow it to the image, a last convolution gives RGB. It is trained
on the attacker's own faces and their templates with a pixel (L1) loss. NbNet adds a
perceptual loss through a pretrained network and trains on millions of generated faces; with
a few hundred real faces on a CPU, the pixel loss alone is what fits in minutes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from facebone.attacks.inversion.base import InversionAttack, resize_faces
from facebone.attacks.registry import register_attack
from facebone.errors import FaceBoneError


def to_tensor(faces: np.ndarray, device: str) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> float (N, 3, S, S) in 0..1."""
    return torch.from_numpy(faces).to(device).permute(0, 3, 1, 2).float() / 255.0


def to_images(pixels: torch.Tensor) -> np.ndarray:
    """float (N, 3, S, S) in 0..1 -> uint8 (N, S, S, 3)."""
    array = (pixels.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1)
    return array.cpu().numpy()


def normalise_templates(templates: torch.Tensor) -> torch.Tensor:
    """Unit-variance entries whatever the template's scale: raw embeddings and +-1 BioHash
    bits alike."""
    return F.normalize(templates, dim=1) * templates.shape[1] ** 0.5


class Decoder(nn.Module):
    def __init__(self, template_dim: int, image_size: int, width: int = 256) -> None:
        super().__init__()
        if image_size % 16:
            raise FaceBoneError(f"image_size must be a multiple of 16, got {image_size}")
        self.start = image_size // 16
        self.width = width
        self.lift = nn.Linear(template_dim, width * self.start**2)
        blocks = []
        channels = width
        for _ in range(4):
            out = max(channels // 2, 16)
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2),
            ]
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.rgb = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, templates: torch.Tensor) -> torch.Tensor:
        x = self.lift(normalise_templates(templates)).view(-1, self.width, self.start, self.start)
        return torch.sigmoid(self.rgb(self.blocks(F.leaky_relu(x, 0.2))))


@register_attack("decoder")
class DecoderInversion(InversionAttack):
    """NbNet-style decoder, `width` channels after the first layer (halved by each block),
    trained for `epochs` with Adam on a one-cycle learning-rate schedule."""

    def __init__(
        self,
        image_size: int = 64,
        width: int = 256,
        epochs: int = 30,
        batch_size: int = 32,
        learning_rate: float = 2e-3,
        device: str = "cpu",
        seed: int | None = 0,
        progress: bool = False,
    ) -> None:
        self.image_size = image_size
        self.width = width
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.seed = seed
        self.progress = progress

    def _fit(self, faces: np.ndarray, templates: np.ndarray) -> DecoderInversion:
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        if self.seed is not None:
            torch.manual_seed(self.seed)
        decoder = Decoder(templates.shape[1], self.image_size, self.width).to(self.device)
        targets = to_tensor(resize_faces(faces, self.image_size), self.device)
        codes = torch.from_numpy(templates).to(self.device)
        optimiser = torch.optim.Adam(decoder.parameters(), lr=self.learning_rate)
        steps = self.epochs * -(-len(faces) // self.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, self.learning_rate, steps)
        decoder.train()
        bar = tqdm(range(self.epochs), desc="training decoder", disable=not self.progress)
        for _ in bar:
            order = torch.randperm(len(faces), generator=generator).to(self.device)
            for start in range(0, len(faces), self.batch_size):
                batch = order[start : start + self.batch_size]
                if len(batch) < 2:  # batch norm needs two
                    continue
                loss = F.l1_loss(decoder(codes[batch]), targets[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        self.decoder_ = decoder.eval()
        return self

    @torch.no_grad()
    def _invert(self, templates: np.ndarray) -> np.ndarray:
        codes = torch.from_numpy(templates).to(self.device)
        return np.concatenate(
            [
                to_images(self.decoder_(codes[start : start + 256]))
                for start in range(0, len(codes), 256)
            ]
        )
