"""Optimisation inversion: gradient descent on an image until the attacked backbone's
differentiable copy embeds it where the leaked template points.

Loss: 1 - cosine(backbone(image), template) + `tv_weight` x total variation (the image prior:
without it the descent finds adversarial noise that only the attacked network reads as the
person). The descent starts from a decoder's output when the attack is fitted with one (the
learned inversion gives the face's coarse layout, the descent its identity), else from the
mean of the attacker's faces. `budget` is the number of gradient steps.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from facebone.attacks.inversion.base import InversionAttack, resize_faces
from facebone.attacks.inversion.decoder import DecoderInversion, to_images, to_tensor
from facebone.attacks.registry import register_attack


def total_variation(pixels: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels: small for smooth, natural images."""
    return (pixels[..., 1:, :] - pixels[..., :-1, :]).abs().mean() + (
        pixels[..., :, 1:] - pixels[..., :, :-1]
    ).abs().mean()


@register_attack("optimise")
class OptimisationInversion(InversionAttack):
    """White-box inversion of raw embeddings through `backbone`, a differentiable copy of the
    attacked backbone (`backbones.onnx_torch.differentiable_backbone`). `decoder`: an unfitted
    `DecoderInversion` fitted alongside to give the starting images, or None for the mean face."""

    def __init__(
        self,
        backbone: nn.Module,
        decoder: DecoderInversion | None = None,
        image_size: int = 64,
        budget: int = 50,
        learning_rate: float = 0.02,
        tv_weight: float = 0.5,
        batch_size: int = 32,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        self.backbone = backbone
        self.decoder = decoder
        self.image_size = image_size
        self.budget = budget
        self.learning_rate = learning_rate
        self.tv_weight = tv_weight
        self.batch_size = batch_size
        self.device = device
        self.progress = progress

    def _fit(self, faces: np.ndarray, templates: np.ndarray) -> OptimisationInversion:
        if self.decoder is not None:
            self.decoder.fit(faces, templates)
        self.mean_face_ = resize_faces(faces, self.image_size).mean(axis=0).astype(np.uint8)
        return self

    def _starts(self, templates: np.ndarray) -> np.ndarray:
        if self.decoder is not None:
            return resize_faces(self.decoder.invert(templates), self.image_size)
        return np.repeat(self.mean_face_[None], len(templates), axis=0)

    def _invert(self, templates: np.ndarray) -> np.ndarray:
        self.backbone.to(self.device)
        starts = self._starts(templates)
        batches = range(0, len(templates), self.batch_size)
        bar = tqdm(batches, desc="inverting by gradient descent", disable=not self.progress)
        return np.concatenate(
            [
                self._descend(
                    starts[start : start + self.batch_size],
                    templates[start : start + self.batch_size],
                )
                for start in bar
            ]
        )

    def _descend(self, starts: np.ndarray, templates: np.ndarray) -> np.ndarray:
        # Optimise logits, so pixels stay in 0..1 without clipping away the gradient.
        pixels = to_tensor(starts, self.device).clamp(0.01, 0.99)
        logits = torch.logit(pixels).requires_grad_(True)
        targets = F.normalize(torch.from_numpy(templates).to(self.device), dim=1)
        optimiser = torch.optim.Adam([logits], lr=self.learning_rate)
        for _ in range(self.budget):
            image = torch.sigmoid(logits)
            embedded = F.normalize(self.backbone(image * 255), dim=1)
            loss = (1 - (embedded * targets).sum(dim=1)).mean()
            loss = loss + self.tv_weight * total_variation(image)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return to_images(torch.sigmoid(logits))
