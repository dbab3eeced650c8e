"""A small MLP on symmetric pair features, optionally trained with DP-SGD (Opacus).

The original prototype fed `|e1 - e2|` to an MLP. Here the features of a pair of
L2-normalised embeddings `a`, `b` are `concat(|a - b|, a * b, [cos(a, b)], onehot(source))`:
symmetric in `a` and `b`, zero where both embeddings are zero-padded (so padding adds
nothing to the first layer), and with the source one-hot the network can learn a separate
decision for each backbone when one predictor serves several.

PyTorch (and Opacus) train the network; a fitted predictor answers with numpy alone, since
importing torch takes about a second, most of a one-off `facebone verify`.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from facebone.params import Constraints, Interval, InvalidParameterError, Widths
from facebone.predictors.base import InvalidPairsError, Predictor, sigmoid
from facebone.predictors.registry import register_predictor

if TYPE_CHECKING:
    import torch
    from threadpoolctl import ThreadpoolController
    from torch import nn

    from facebone.predictors.mlp_batch import MLPRecipe

_show_progress = False
PROGRESS_AFTER_S = 1.0  # a shorter training is over before a bar could tell anything


@contextmanager
def training_progress(enabled: bool = True) -> Iterator[None]:
    """Show an epoch progress bar on stderr while nn predictors train (the CLI's choice;
    experiments and tests train silently)."""
    global _show_progress
    before, _show_progress = _show_progress, enabled
    try:
        yield
    finally:
        _show_progress = before


def epoch_bar(epochs: int, desc: str, show: bool) -> Iterable[int]:
    """`range(epochs)`, shown as a bar on stderr when `show` and training outlasts
    `PROGRESS_AFTER_S`."""
    from tqdm import tqdm

    return tqdm(range(epochs), desc=desc, unit="epoch", disable=not show, delay=PROGRESS_AFTER_S)


def pair_features(
    a: np.ndarray, b: np.ndarray, source_index: np.ndarray, n_sources: int
) -> np.ndarray:
    """`concat(|a-b|, a*b, [a.b], onehot(source_index))` for L2-normalised rows, float32."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    n, width = a.shape
    features = np.empty((n, 2 * width + 1 + n_sources), dtype=np.float32)
    np.subtract(a, b, out=features[:, :width])
    np.abs(features[:, :width], out=features[:, :width])
    np.multiply(a, b, out=features[:, width : 2 * width])
    features[:, 2 * width] = features[:, width : 2 * width].sum(axis=1)
    features[:, 2 * width + 1 :] = 0.0
    features[np.arange(n), 2 * width + 1 + np.asarray(source_index)] = 1.0
    return features


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: these MLPs are too small to gain from more, and on a busy
    2-core machine thread hand-offs made each step 10-30x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_mlp(in_features: int, hidden: Sequence[int], dropout: float) -> nn.Sequential:
    """Linear-ReLU(-Dropout) blocks ending in one logit; no BatchNorm, so Opacus can wrap it."""
    from torch import nn

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


def linear_layer_names(hidden: Sequence[int], dropout: float) -> list[str]:
    """Positions of `build_mlp`'s Linear layers in its `nn.Sequential` (their state names)."""
    step = 3 if dropout > 0 else 2
    return [str(i * step) for i in range(len(hidden) + 1)]


class NumpyMLP:
    """`build_mlp`'s network at inference (dropout is the identity there), in numpy float32
    like torch's forward: answering needs no torch import."""

    def __init__(
        self,
        state: dict[str, np.ndarray],
        in_features: int,
        hidden: Sequence[int],
        dropout: float,
    ) -> None:
        names = linear_layer_names(hidden, dropout)
        expected = {f"{n}.{kind}" for n in names for kind in ("weight", "bias")}
        if set(state) != expected:
            raise ValueError(
                f"tensors {sorted(state)} do not match the network's {sorted(expected)}"
            )
        widths = [in_features, *hidden, 1]
        self.state: dict[str, np.ndarray] = {}  # in torch's state_dict order
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []  # (in x out weight, bias)
        for i, name in enumerate(names):
            for kind, shape in (("weight", (widths[i + 1], widths[i])), ("bias", (widths[i + 1],))):
                arr = np.array(state[f"{name}.{kind}"], dtype=np.float32)
                if arr.shape != shape:
                    raise ValueError(f"tensor '{name}.{kind}' has shape {arr.shape}, not {shape}")
                if not np.all(np.isfinite(arr)):
                    raise ValueError(f"tensor '{name}.{kind}' holds NaN or infinite values")
                self.state[f"{name}.{kind}"] = arr
            self.layers.append(
                (np.ascontiguousarray(self.state[f"{name}.weight"].T), self.state[f"{name}.bias"])
            )

    def logits(self, x: np.ndarray) -> np.ndarray:
        """One logit per row of float32 features `x`, shape (N,).

        On one BLAS thread, as training runs torch on one: on a busy 2-core machine
        OpenBLAS's thread hand-offs made a batch of 64 pairs 300x slower (16 ms, not 0.05).
        """
        h = x
        with _blas_threads().limit(limits=1, user_api="blas"):
            for i, (weight, bias) in enumerate(self.layers):
                h = h @ weight + bias
                if i < len(self.layers) - 1:
                    np.maximum(h, 0.0, out=h)
        return h[:, 0]


@functools.cache
def _blas_threads() -> ThreadpoolController:
    """The BLAS libraries loaded (found once: looking takes about a millisecond)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


MAX_DP_EPSILON = 100


@functools.cache
def dp_noise_multiplier(epsilon: float, delta: float, sample_rate: float, epochs: int) -> float:
    """Opacus's noise multiplier for a budget (its PRV accountant, as `make_private_with_epsilon`
    uses); remembered, since finding it takes seconds and shadows ask for the same one."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        # The RDP order warning only says the bound may be slightly loose (conservative).
        warnings.filterwarnings("ignore", message=".*Optimal order is the largest alpha.*")
        return float(
            get_noise_multiplier(
                target_epsilon=epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                epochs=epochs,
                accountant="prv",
            )
        )


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
    relax_alpha : train with RelaxLoss (Chen et al. 2022) to this target loss: member losses
        are held near alpha rather than driven to zero, which is what membership attacks read.
        `None` trains normally.

    `NNPredictor.fit_many` trains many predictors of one configuration at once (shadow
    models); `fit` is `fit_many` of one, except that DP-SGD runs through Opacus itself.

    Fitted attributes: `model_` (a `NumpyMLP`), `train_losses_` (mean loss per epoch),
    `epsilon_` and `delta_` (the spent budget; `None` without DP), `noise_multiplier_`.
    """

    # Read by the study configuration ([[regimes]] and predictor_params) and `train`'s flags.
    _parameter_constraints: ClassVar[Constraints] = {
        "hidden": [Widths(max_width=4096, max_layers=16)],
        "epochs": [Interval(int, 1, 100_000)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "batch_size": [Interval(int, 1, 1_000_000)],
        "weight_decay": [Interval(float, 0, None)],
        "dropout": [Interval(float, 0, 1, closed="left")],
        "seed": [Interval(int, 0, 2**63 - 1)],  # derived seeds too (`params.SEED`)
        # Above 100 a DP guarantee (a likelihood ratio up to e^100) says nothing, and Opacus's
        # search for the noise, which nears zero, runs for ever (epsilon 1000: over 5 min).
        "dp_epsilon": [Interval(float, 0, MAX_DP_EPSILON, closed="right"), None],
        "dp_delta": [Interval(float, 0, 1, closed="neither"), None],
        "max_grad_norm": [Interval(float, 0, None, closed="neither")],
        "relax_alpha": [Interval(float, 0, None, closed="neither"), None],
    }

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
        relax_alpha: float | None = None,
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
        self.relax_alpha = relax_alpha

    # ---- training ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        super()._check_params()
        if self.relax_alpha is not None and self.dp_epsilon is not None:
            raise InvalidParameterError(
                "NNPredictor: relax_alpha must be None when training with DP-SGD (dp_epsilon)"
            )

    def _n_inputs(self) -> int:
        return 2 * self.n_features_in_ + 1 + len(self.sources_)

    def _fit(self, a: np.ndarray, b: np.ndarray, y: np.ndarray, src: np.ndarray) -> None:
        import torch

        with one_torch_thread():
            if self.dp_epsilon is None:
                self._fit_batch([self], [(a, b, y, src)])
                return
            x = torch.from_numpy(self._features(a, b, src))
            t = torch.from_numpy(y.astype(np.float32))
            # A private RNG scope: seeding must not disturb the caller's global torch RNG.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = build_mlp(self._n_inputs(), self.hidden, self.dropout)
                optimizer = torch.optim.Adam(
                    net.parameters(), lr=self.lr, weight_decay=self.weight_decay
                )
                self.train_losses_ = self._train_dp(net, optimizer, x, t)
            # A fresh module without Opacus's training hooks, loaded from the same tensors
            # that get_state saves, so a saved predictor answers identically.
            self._set_model({k: v.detach().numpy() for k, v in net.state_dict().items()})

    @classmethod
    def fit_many(
        cls, predictors: Sequence[NNPredictor], datasets: Sequence[tuple]
    ) -> list[NNPredictor]:
        """Fit `predictors[i]` on `datasets[i] = (e1, e2, y, source)` in one batched run.

        The predictors must share every option but `seed`. `y` may hold soft targets in
        [0, 1] (distillation). With `dp_epsilon` the batch runs DP-SGD itself, with the noise
        multiplier Opacus's accountant gives for the same budget, sampling rate and epochs.
        """
        predictors = list(predictors)
        if len(predictors) != len(datasets) or not predictors:
            raise InvalidPairsError("fit_many needs one dataset per predictor.")
        options = {k: v for k, v in predictors[0].get_params().items() if k != "seed"}
        for predictor in predictors:
            if {k: v for k, v in predictor.get_params().items() if k != "seed"} != options:
                raise InvalidPairsError("fit_many trains predictors that differ only in seed.")
        try:
            prepared = [
                p._prepare_fit(*data, soft=True)
                for p, data in zip(predictors, datasets, strict=True)
            ]
            with one_torch_thread():
                cls._fit_batch(predictors, prepared)
        except BaseException:
            for predictor in predictors:
                predictor._clear_fitted()
            raise
        return predictors

    @staticmethod
    def _fit_batch(predictors: list[NNPredictor], prepared: Sequence[tuple]) -> None:
        """Train fresh networks for prepared `(a, b, y, src)` sets, grouped by the DP noise
        each needs (it depends on the training-set size)."""
        import torch

        from facebone.predictors.mlp_batch import train_mlps

        groups: dict[float | None, list[int]] = {}
        for i, (predictor, (a, *_)) in enumerate(zip(predictors, prepared, strict=True)):
            groups.setdefault(predictor._noise_multiplier(len(a)), []).append(i)
        for noise, members in groups.items():
            chosen = [predictors[i] for i in members]
            features = [
                chosen[k]._features(prepared[i][0], prepared[i][1], prepared[i][3])
                for k, i in enumerate(members)
            ]
            offsets = np.cumsum([0] + [len(f) for f in features])
            reference = chosen[0]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(reference.seed)
                trained = train_mlps(
                    torch.from_numpy(np.concatenate(features)),
                    torch.from_numpy(
                        np.concatenate([prepared[i][2] for i in members]).astype(np.float32)
                    ),
                    [np.arange(offsets[k], offsets[k + 1]) for k in range(len(members))],
                    [p._initial_state() for p in chosen],
                    [p.seed for p in chosen],
                    reference._recipe(noise),
                    progress=_show_progress,
                )
            for k, predictor in enumerate(chosen):
                predictor.train_losses_ = trained.losses[k]
                predictor.noise_multiplier_ = noise
                predictor.epsilon_ = None if noise is None else float(predictor.dp_epsilon)
                predictor.delta_ = (
                    None if noise is None else predictor._dp_delta(len(prepared[members[k]][0]))
                )
                predictor._set_model(trained.states[k])

    def _features(self, a: np.ndarray, b: np.ndarray, src: np.ndarray) -> np.ndarray:
        return pair_features(a, b, self._source_index(src), len(self.sources_))

    def _initial_state(self) -> dict[str, torch.Tensor]:
        """The network `seed` starts from (the same draw a plain training loop makes)."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return build_mlp(self._n_inputs(), self.hidden, self.dropout).state_dict()

    def _recipe(self, noise_multiplier: float | None) -> MLPRecipe:
        from facebone.predictors.mlp_batch import MLPRecipe

        return MLPRecipe(
            hidden=tuple(self.hidden),
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            dropout=self.dropout,
            relax_alpha=self.relax_alpha,
            noise_multiplier=noise_multiplier,
            max_grad_norm=self.max_grad_norm,
        )

    def _dp_delta(self, n_train: int) -> float:
        return float(self.dp_delta if self.dp_delta is not None else default_delta(n_train))

    def _noise_multiplier(self, n_train: int) -> float | None:
        """DP-SGD noise for `epochs` epochs at Poisson rate 1/steps (Opacus's accountant)."""
        if self.dp_epsilon is None:
            return None
        from facebone.predictors.mlp_batch import steps_per_epoch

        return dp_noise_multiplier(
            float(self.dp_epsilon),
            self._dp_delta(n_train),
            1.0 / steps_per_epoch(n_train, self.batch_size),
            self.epochs,
        )

    def _train_dp(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, t: torch.Tensor
    ) -> list[float]:
        import torch
        from opacus import PrivacyEngine  # imported here: only DP training needs it
        from torch import nn

        n = x.shape[0]
        delta = self._dp_delta(n)
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
            # make_private_with_epsilon would search the same noise multiplier again (seconds).
            engine = PrivacyEngine(accountant="prv")
            private_net, private_opt, private_loader = engine.make_private(
                module=net,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=self._noise_multiplier(n),
                max_grad_norm=float(self.max_grad_norm),
                noise_generator=torch.Generator().manual_seed(self.seed + 1),
            )
            loss_fn = nn.BCEWithLogitsLoss()
            losses = []
            private_net.train()
            for _ in epoch_bar(self.epochs, "training nn (DP-SGD)", _show_progress):
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
        self.model_ = NumpyMLP(tensors, self._n_inputs(), self.hidden, self.dropout)

    def _predict_proba(self, a: np.ndarray, b: np.ndarray, src: np.ndarray) -> np.ndarray:
        if a.shape[1] != self.n_features_in_:
            raise InvalidPairsError(
                f"This nn predictor was fitted on {self.n_features_in_}-wide embeddings, got "
                f"{a.shape[1]}; zero-pad or truncate to the width used in fit."
            )
        return sigmoid(self.model_.logits(self._features(a, b, src)))

    def _fitted_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        fitted = {
            "train_losses": list(self.train_losses_),
            "epsilon": self.epsilon_,
            "delta": self.delta_,
            "noise_multiplier": self.noise_multiplier_,
        }
        tensors = {k: v.copy() for k, v in self.model_.state.items()}
        return fitted, tensors

    def _load_fitted_state(self, fitted: Any, tensors: dict[str, np.ndarray]) -> None:
        self.train_losses_ = [float(v) for v in fitted["train_losses"]]
        for key in ("epsilon", "delta", "noise_multiplier"):
            value = fitted[key]
            setattr(self, f"{key}_", None if value is None else float(value))
        self._set_model(tensors)
