"""A small PyTorch MLP on symmetric pair features, optionally trained with DP-SGD (Opacus).

The original prototype fed `|e1 - e2|` to an MLP. Here the features of a pair of
L2-normalised embeddings `a`, `b` are `concat(|a - b|, a * b, [cos(a, b)], onehot(source))`:
symmetric in `a` and `b`, zero where both embeddings are zero-padded (so padding adds
nothing to the first layer), and with the source one-hot the network can learn a separate
decision for each backbone when one predictor serves several.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from facebone.predictors.base import InvalidPairsError, Predictor
from facebone.predictors.registry import register_predictor


def pair_features(
    a: np.ndarray, b: np.ndarray, source_index: np.ndarray, n_sources: int
) -> np.ndarray:
    """`concat(|a-b|, a*b, [a.b], onehot(source_index))` for L2-normalised rows, float32."""
    prod = a * b
    onehot = np.zeros((a.shape[0], n_sources))
    onehot[np.arange(a.shape[0]), source_index] = 1.0
    cos = prod.sum(axis=1, keepdims=True)
    return np.concatenate([np.abs(a - b), prod, cos, onehot], axis=1).astype(np.float32)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: these MLPs are too small to gain from more, and on a busy
    2-core machine thread hand-offs made each step 10-30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_mlp(in_features: int, hidden: Sequence[int], dropout: float) -> nn.Sequential:
    """Linear-ReLU(-Dropout) blocks ending in one logit; no BatchNorm, so Opacus can wrap it."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def default_delta(n_train: int) -> float:
    """`1/n` rounded down to a power of ten, and never above 1e-5."""
    return min(1e-5, 10.0 ** math.floor(math.log10(1.0 / n_train)))


@register_predictor("nn")
class NNPredictor(Predictor):
    """MLP on symmetric pair features, trained with Adam and a BCE-with-logits loss.

    Parameters
    ----------
    hidden : widths of the hidden layers.
    epochs, lr, batch_size, weight_decay, dropout : the usual training options (Adam).
    seed : everything random (initialisation, shuffling, dropout, DP noise and sampling) is
        drawn from this seed, so the same seed gives the same network.
    dp_epsilon : train with DP-SGD to this (epsilon, delta) budget; `None` trains normally.
        Opacus picks the noise multiplier for `epochs` epochs with Poisson sampling at an
        expected batch size of `batch_size`.
    dp_delta : the DP delta; `None` uses `default_delta(n_train)`.
    max_grad_norm : per-sample gradient clipping norm for DP-SGD.

    Fitted attributes: `model_`, `train_losses_` (mean loss per epoch), `epsilon_` and
    `delta_` (the spent budget; `None` without DP), `noise_multiplier_`.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128,),
        epochs: int = 60,
        lr: float = 1e-3,
        batch_size: int = 64,
        weight_decay: float = 1e-4,
        dropout: float = 0.0,
        seed: int = 0,
        dp_epsilon: float | None = None,
        dp_delta: float | None = None,
        max_grad_norm: float = 1.0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.seed = seed
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.max_grad_norm = max_grad_norm

    # ---- training ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        def bad(name: str, what: str) -> InvalidPairsError:
            return InvalidPairsError(f"{name} must be {what}, got {getattr(self, name)!r}.")

        if not isinstance(self.hidden, list | tuple) or not all(
            isinstance(h, int) and h > 0 for h in self.hidden
        ):
            raise bad("hidden", "a sequence of positive layer widths")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, "a positive integer")
        if not isinstance(self.seed, int):
            raise bad("seed", "an integer")
        if not self.lr > 0:
            raise bad("lr", "a positive number")
        if not self.weight_decay >= 0:
            raise bad("weight_decay", "a non-negative number")
        if not 0 <= self.dropout < 1:
            raise bad("dropout", "in [0, 1)")
        if self.dp_epsilon is not None and not self.dp_epsilon > 0:
            raise bad("dp_epsilon", "a positive number or None")
        if self.dp_delta is not None and not 0 < self.dp_delta < 1:
            raise bad("dp_delta", "in (0, 1) or None")
        if not self.max_grad_norm > 0:
            raise bad("max_grad_norm", "a positive number")

    def _n_inputs(self) -> int:
        return 2 * self.n_features_in_ + 1 + len(self.sources_)

    def _fit(self, a: np.ndarray, b: np.ndarray, y: np.ndarray, src: np.ndarray) -> None:
        with one_torch_thread():
            self._fit_model(a, b, y, src)

    def _fit_model(self, a: np.ndarray, b: np.ndarray, y: np.ndarray, src: np.ndarray) -> None:
        self._check_params()
        x = torch.from_numpy(pair_features(a, b, self._source_index(src), len(self.sources_)))
        t = torch.from_numpy(y.astype(np.float32))
        # A private RNG scope: seeding must not disturb the caller's global torch RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = build_mlp(self._n_inputs(), self.hidden, self.dropout)
            optimizer = torch.optim.Adam(
                net.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            if self.dp_epsilon is None:
                losses = self._train_plain(net, optimizer, x, t)
                self.epsilon_ = self.delta_ = self.noise_multiplier_ = None
            else:
                losses = self._train_dp(net, optimizer, x, t)
        self.train_losses_ = losses
        # A fresh module without training hooks (Opacus attaches some), loaded from the
        # same tensors that get_state saves, so a saved predictor answers identically.
        self._set_model({k: v.detach().numpy() for k, v in net.state_dict().items()})

    def _train_plain(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, t: torch.Tensor
    ) -> list[float]:
        generator = torch.Generator().manual_seed(self.seed)
        loss_fn = nn.BCEWithLogitsLoss()
        n = x.shape[0]
        losses = []
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(net(x[idx]).squeeze(1), t[idx])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
            losses.append(total / n)
        return losses

    def _train_dp(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, t: torch.Tensor
    ) -> list[float]:
        from opacus import PrivacyEngine  # imported here: only DP training needs it

        n = x.shape[0]
        delta = self.dp_delta if self.dp_delta is not None else default_delta(n)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, t),
            batch_size=self.batch_size,
            generator=torch.Generator().manual_seed(self.seed),
        )
        with warnings.catch_warnings():
            # Opacus warns that its non-cryptographic RNG is for experiments only; we know, and
            # a seeded generator is what makes training reproducible. The RDP order warning only
            # says the reported epsilon may be slightly loose (conservative). The backward-hook
            # warning fires because the inputs do not require gradients, which is intended.
            warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
            warnings.filterwarnings("ignore", message=".*Optimal order is the largest alpha.*")
            warnings.filterwarnings("ignore", message=".*[Ff]ull backward hook.*")
            engine = PrivacyEngine()
            private_net, private_opt, private_loader = engine.make_private_with_epsilon(
                module=net,
                optimizer=optimizer,
                data_loader=loader,
                target_epsilon=float(self.dp_epsilon),
                target_delta=delta,
                epochs=self.epochs,
                max_grad_norm=float(self.max_grad_norm),
                noise_generator=torch.Generator().manual_seed(self.seed + 1),
            )
            loss_fn = nn.BCEWithLogitsLoss()
            losses = []
            private_net.train()
            for _ in range(self.epochs):
                total, seen = 0.0, 0
                for xb, tb in private_loader:
                    private_opt.zero_grad()
                    if len(xb) == 0:
                        # An empty Poisson batch still takes a (pure-noise) step, as the
                        # privacy accounting assumes.
                        loss = private_net(xb).sum()
                    else:
                        loss = loss_fn(private_net(xb).squeeze(1), tb)
                        total += loss.item() * len(xb)
                        seen += len(xb)
                    loss.backward()
                    private_opt.step()
                losses.append(total / max(seen, 1))
            self.epsilon_ = float(engine.get_epsilon(delta))
        self.delta_ = float(delta)
        self.noise_multiplier_ = float(private_opt.noise_multiplier)
        return losses

    # ---- prediction and state ---------------------------------------------------------------

    def _set_model(self, tensors: dict[str, np.ndarray]) -> None:
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten below
            net = build_mlp(self._n_inputs(), self.hidden, self.dropout)
        state = {}
        for k, v in tensors.items():
            arr = np.asarray(v, dtype=np.float32)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"tensor {k!r} holds NaN or infinite values")
            state[k] = torch.from_numpy(arr.copy())
        net.load_state_dict(state, strict=True)
        net.eval()
        self.model_ = net

    def _predict_proba(self, a: np.ndarray, b: np.ndarray, src: np.ndarray) -> np.ndarray:
        if a.shape[1] != self.n_features_in_:
            raise InvalidPairsError(
                f"This nn predictor was fitted on {self.n_features_in_}-wide embeddings, got "
                f"{a.shape[1]}; zero-pad or truncate to the width used in fit."
            )
        x = torch.from_numpy(pair_features(a, b, self._source_index(src), len(self.sources_)))
        with torch.no_grad(), one_torch_thread():
            logits = self.model_(x).squeeze(1).numpy().astype(np.float64)
        return 0.5 * (1.0 + np.tanh(0.5 * logits))

    def _fitted_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        fitted = {
            "train_losses": list(self.train_losses_),
            "epsilon": self.epsilon_,
            "delta": self.delta_,
            "noise_multiplier": self.noise_multiplier_,
        }
        tensors = {k: v.detach().numpy().copy() for k, v in self.model_.state_dict().items()}
        return fitted, tensors

    def _load_fitted_state(self, fitted: Any, tensors: dict[str, np.ndarray]) -> None:
        self.train_losses_ = [float(v) for v in fitted["train_losses"]]
        for key in ("epsilon", "delta", "noise_multiplier"):
            value = fitted[key]
            setattr(self, f"{key}_", None if value is None else float(value))
        self._set_model(tensors)
