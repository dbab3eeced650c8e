"""Train many small MLPs at once: S networks of one shape, each on its own rows of one shared
feature table, as batched matrix products.

Membership attacks need dozens of shadow predictors trained exactly like the target; trained
one after the other, the Python loop around tiny matmuls dominates. Here every layer is an
`(S, in, out)` tensor and one step of all S networks is one `baddbmm` per layer. The step is
`torch.optim.Adam` (its fused kernel: the Adam update, not the matmuls, is what costs) on
`BCEWithLogitsLoss`, so a batch of one trains the same network as a plain loop: the nn
predictor trains through this too, and a test checks that S networks at once equal S separate
runs. Networks are grouped by steps per epoch, so every network of a group steps together.

Options on top of plain training:
- RelaxLoss (Chen et al., ICLR 2022): below a target loss `relax_alpha` a network alternates
  gradient ascent towards the target (even epochs) with training on its misclassified pairs
  only (odd epochs; for two classes, RelaxLoss's posterior flattening leaves no gradient on
  the correctly classified ones), so member losses stay near alpha instead of near zero.
- DP-SGD (Abadi et al. 2016), the algorithm Opacus runs: Poisson sampling at rate 1/steps,
  per-example gradients clipped to `max_grad_norm`, Gaussian noise of `noise_multiplier *
  max_grad_norm`, divided by the expected batch size, then the Adam step. Per-example norms
  come from each layer's inputs and output gradients (|g x^T| = |g| |x|), so no per-example
  gradient is ever stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from facebone.predictors.nn import epoch_bar


@dataclass(frozen=True)
class MLPRecipe:
    """How every network of a batch trains (the nn predictor's options)."""

    hidden: tuple[int, ...]
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    dropout: float = 0.0
    relax_alpha: float | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0


@dataclass
class TrainedMLPs:
    """Per network: state dict in `build_mlp`'s names (numpy) and mean loss per epoch."""

    states: list[dict[str, np.ndarray]]
    losses: list[list[float]]


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    return math.ceil(n_rows / batch_size)


class _StackedMLP:
    """The parameters of S networks: `weights[l]` (S, in, out), `biases[l]` (S, out)."""

    def __init__(self, initial: Sequence[dict[str, torch.Tensor]]) -> None:
        keys = list(initial[0])
        self.names = [(keys[i], keys[i + 1]) for i in range(0, len(keys), 2)]
        self.weights = [
            torch.stack([s[w].T for s in initial]).contiguous().requires_grad_()
            for w, _ in self.names
        ]
        self.biases = [
            torch.stack([s[b] for s in initial]).contiguous().requires_grad_()
            for _, b in self.names
        ]

    @property
    def params(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def forward(
        self, x: torch.Tensor, dropout: float, train: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Logits (S, B), each layer's input and each layer's pre-activation output."""
        inputs, outputs = [], []
        h = x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            inputs.append(h)
            z = torch.baddbmm(b.unsqueeze(1), h, w)
            outputs.append(z)
            if layer < last:
                h = torch.relu(z)
                if dropout > 0 and train:
                    h = functional.dropout(h, dropout, training=True)
        return outputs[-1].squeeze(2), inputs, outputs

    def states(self) -> list[dict[str, np.ndarray]]:
        result = []
        for s in range(self.weights[0].shape[0]):
            state = {}
            for (wn, bn), w, b in zip(self.names, self.weights, self.biases, strict=True):
                state[wn] = w[s].detach().T.numpy().copy()
                state[bn] = b[s].detach().numpy().copy()
            result.append(state)
        return result


def _row_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def _objective(
    losses: torch.Tensor,
    logits: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor,
    recipe: MLPRecipe,
    epoch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-network objective (summed to backpropagate) and mean BCE of each network's batch."""
    count = valid.sum(1).clamp(min=1)
    mean_loss = (losses * valid).sum(1) / count
    if recipe.relax_alpha is None:
        return mean_loss, mean_loss
    alpha = recipe.relax_alpha
    if epoch % 2 == 0:
        relaxed = (mean_loss - alpha).abs()
    else:
        wrong = (logits > 0) != (targets > 0.5)
        relaxed = (losses * valid * wrong).sum(1) / count
    return torch.where(mean_loss.detach() >= alpha, mean_loss, relaxed), mean_loss


def _dp_gradients(
    inputs: list[torch.Tensor],
    outputs: list[torch.Tensor],
    row_loss: torch.Tensor,
    valid: torch.Tensor,
    recipe: MLPRecipe,
    expected_batch: torch.Tensor,
    generator: torch.Generator,
) -> list[torch.Tensor]:
    """Clipped, noised, averaged gradients (weights then biases), as Opacus's DPOptimizer."""
    output_grads = torch.autograd.grad((row_loss * valid).sum(), outputs)
    norm_sq = torch.zeros_like(row_loss)
    for h, g in zip(inputs, output_grads, strict=True):
        norm_sq = norm_sq + (g * g).sum(2) * ((h * h).sum(2) + 1.0)
    clip = (recipe.max_grad_norm / (norm_sq.sqrt() + 1e-6)).clamp(max=1.0) * valid
    sigma = recipe.noise_multiplier * recipe.max_grad_norm
    scale = expected_batch.view(-1, 1, 1)
    weight_grads, bias_grads = [], []
    for h, g in zip(inputs, output_grads, strict=True):
        g = g * clip.unsqueeze(2)
        w_grad = torch.einsum("sbi,sbo->sio", h, g)
        b_grad = g.sum(1)
        w_grad = w_grad + sigma * torch.randn(w_grad.shape, generator=generator)
        b_grad = b_grad + sigma * torch.randn(b_grad.shape, generator=generator)
        weight_grads.append(w_grad / scale)
        bias_grads.append(b_grad / scale.view(-1, 1))
    return [*weight_grads, *bias_grads]


def train_mlps(
    features: torch.Tensor,
    targets: torch.Tensor,
    rows: Sequence[np.ndarray],
    initial: Sequence[dict[str, torch.Tensor]],
    seeds: Sequence[int],
    recipe: MLPRecipe,
    progress: bool = False,
) -> TrainedMLPs:
    """Train network s from `initial[s]` on `features[rows[s]]` (targets in [0, 1]).

    Shuffling of network s draws from a generator seeded with `seeds[s]`, as a plain loop
    seeded the same way does; DP sampling and noise draw from one generator per group,
    seeded by the group's seeds.
    """
    if not rows or min(len(r) for r in rows) == 0:
        raise ValueError("every network needs at least one training row")
    groups: dict[int, list[int]] = {}
    for s, r in enumerate(rows):
        groups.setdefault(steps_per_epoch(len(r), recipe.batch_size), []).append(s)
    states: list[dict[str, np.ndarray]] = [{} for _ in rows]
    losses: list[list[float]] = [[] for _ in rows]
    for members in groups.values():
        trained = _train_group(
            features,
            targets,
            [rows[s] for s in members],
            [initial[s] for s in members],
            [seeds[s] for s in members],
            recipe,
            progress,
        )
        for k, s in enumerate(members):
            states[s], losses[s] = trained.states[k], trained.losses[k]
    return TrainedMLPs(states, losses)


def _train_group(
    features: torch.Tensor,
    targets: torch.Tensor,
    rows: Sequence[np.ndarray],
    initial: Sequence[dict[str, torch.Tensor]],
    seeds: Sequence[int],
    recipe: MLPRecipe,
    progress: bool,
) -> TrainedMLPs:
    """`train_mlps` for networks with the same number of steps per epoch; `progress` shows an
    epoch bar on stderr."""
    n_models = len(rows)
    sizes = torch.tensor([len(r) for r in rows])
    steps = steps_per_epoch(int(sizes.max()), recipe.batch_size)
    table = torch.zeros(n_models, int(sizes.max()), dtype=torch.long)
    for s, r in enumerate(rows):
        table[s, : len(r)] = torch.as_tensor(np.asarray(r), dtype=torch.long)
    model = _StackedMLP(initial)
    optimizer = torch.optim.Adam(
        model.params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True
    )
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    shared_seed = int(np.random.SeedSequence([int(s) for s in seeds]).generate_state(1)[0])
    shared = torch.Generator().manual_seed(shared_seed)
    expected_batch = sizes.float() / steps
    losses: list[list[float]] = [[] for _ in range(n_models)]
    name = "nn" if n_models == 1 else f"{n_models} nns"
    for epoch in epoch_bar(recipe.epochs, f"training {name}", progress):
        total = torch.zeros(n_models, dtype=torch.float64)
        seen = torch.zeros(n_models, dtype=torch.float64)
        if recipe.noise_multiplier is None:
            order = torch.full((n_models, steps * recipe.batch_size), -1)
            for s in range(n_models):
                order[s, : sizes[s]] = torch.randperm(int(sizes[s]), generator=generators[s])
        for step in range(steps):
            if recipe.noise_multiplier is None:
                picked = order[:, step * recipe.batch_size : (step + 1) * recipe.batch_size]
            else:
                picked = _poisson_batch(sizes, steps, shared)
            valid = (picked >= 0).float()
            index = torch.gather(table, 1, picked.clamp(min=0))
            t = targets[index]
            logits, inputs, outputs = model.forward(features[index], recipe.dropout, train=True)
            row_loss = _row_losses(logits, t)
            if recipe.noise_multiplier is None:
                objective, batch_loss = _objective(row_loss, logits, t, valid, recipe, epoch)
                grads = torch.autograd.grad(objective.sum(), model.params)
            else:
                batch_loss = (row_loss * valid).sum(1) / valid.sum(1).clamp(min=1)
                grads = _dp_gradients(
                    inputs, outputs, row_loss, valid, recipe, expected_batch, shared
                )
            for param, grad in zip(model.params, grads, strict=True):
                param.grad = grad
            optimizer.step()
            counted = valid.sum(1).double()
            total += batch_loss.detach().double() * counted
            seen += counted
        for s in range(n_models):
            losses[s].append(float(total[s] / max(float(seen[s]), 1.0)))
    return TrainedMLPs(model.states(), losses)


def _poisson_batch(sizes: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Rows of each network's Poisson-sampled batch (rate 1/steps), padded with -1."""
    n_models, longest = len(sizes), int(sizes.max())
    chosen = torch.rand(n_models, longest, generator=generator, dtype=torch.float64) < 1 / steps
    chosen &= torch.arange(longest).view(1, -1) < sizes.view(-1, 1)
    width = max(int(chosen.sum(1).max()), 1)
    position = torch.arange(longest).expand(n_models, -1)
    ranked = torch.where(chosen, position, longest + position)
    picked = ranked.sort(1).values[:, :width]
    return torch.where(picked < longest, picked, torch.full_like(picked, -1))
