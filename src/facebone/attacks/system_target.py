"""Black-box views of real FR systems: the target to attack, shadows trained like it, and
what an informed attacker computes itself with the system's public backbones."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from facebone.attacks.base import AttackError, QueryFn
from facebone.attacks.membership.parameter import CalibrationDesign
from facebone.data.pairs import Pair
from facebone.embeddings.embedder import Embedder
from facebone.predictors import DistancePredictor, create_predictor, get_predictor_class
from facebone.predictors.base import l2_normalize
from facebone.protection import PROTECTIONS
from facebone.protection.attribute_suppression import AttributeSuppression
from facebone.system import FRSystem
from facebone.system.output_policy import OutputPolicy, harden_queries


def system_query_fn(
    system: FRSystem, root: str | Path, output: OutputPolicy | None = None
) -> QueryFn:
    """Pairs of images under `root` in, the system's P(same) out, as `output` shows it to a
    client (None: the probability as it is)."""

    def ask(pairs: Sequence[Pair]) -> np.ndarray:
        return system.predict_proba(root, pairs)

    return ask if output is None else harden_queries(ask, output)


class SystemShadowTrainer:
    """Shadow systems with the target's options (`FRSystem.get_params()`), seeded per shadow
    and trained many at a time (`FRSystem.fit_many`).

    The attacker knows how the target was trained (backbones, predictor, mitigation) but not
    its seed or its training pairs. A shadow's per-query draws are seeded by its own seed, so
    a run is reproducible. A member-free target's shadows fit on the same `public_pairs`; a
    target with attribute suppression hands its `suppressions` over (fitted on public faces,
    so the attacker knows them); the shadows answer as the target's `output` policy lets it
    (the attacker knows it).
    """

    def __init__(
        self,
        params: dict,
        embedder: Embedder,
        root: str | Path,
        public_pairs: Sequence[Pair] | None = None,
        output: OutputPolicy | None = None,
        suppressions: Mapping[str, AttributeSuppression] | None = None,
    ) -> None:
        self.params = params
        self.embedder = embedder
        self.root = root
        self.public_pairs = public_pairs
        self.output = output
        self.suppressions = suppressions

    def __call__(self, pairs: Sequence[Pair], seed: int) -> QueryFn:
        return self.train_many([(pairs, seed)])[0]

    def train_many(self, requests: Sequence[tuple[Sequence[Pair], int]]) -> list[QueryFn]:
        params = plain_equivalent(self.params)
        systems = [FRSystem(**{**params, "seed": seed}) for _, seed in requests]
        FRSystem.fit_many(
            systems,
            self.embedder,
            self.root,
            [pairs for pairs, _ in requests],
            public_pairs=self.public_pairs,
            suppressions=self.suppressions,
        )
        for system, (_, seed) in zip(systems, requests, strict=True):
            system.reset_query_stream(seed)
        return [system_query_fn(system, self.root, self.output) for system in systems]


def plain_equivalent(params: dict) -> dict:
    """`params` without an encrypting template protection: encrypted matching answers the
    plain cosine to 1e-4, so a shadow trained without it answers as the target would, at a
    fraction of the cost (the attacker's shadows are its own; it holds their keys anyway)."""
    protection = params.get("template_protection")
    if protection is not None and getattr(PROTECTIONS.get(protection), "encrypts", False):
        return {**params, "template_protection": None}
    return params


class SystemPairScores:
    """The score a system's distance predictor gives each pair through each of its backbones,
    `(N, K)`, as the attacker computes it from its own embeddings of the pair images: the
    backbones are public, and so are the zero padding and normalisation (`FRSystem`), so the
    numbers are the system's own. `design()` tells how the system `params` calibrates and fuses
    them (`parameter.CalibrationDesign`), and refuses a system whose answers are not a fixed
    calibration of these scores."""

    def __init__(
        self,
        params: dict,
        embedder: Embedder,
        root: str | Path,
        public_pairs: Sequence[Pair] | None = None,
    ) -> None:
        self.params = params
        self.embedder = embedder
        self.root = root
        self.public_pairs = public_pairs

    def design(self) -> CalibrationDesign:
        system = FRSystem(**self.params)
        refusal = None
        if system.mitigation == "split-distill" or not issubclass(
            get_predictor_class(system.predictor), DistancePredictor
        ):
            refusal = f"its {system.predictor!r} predictor is not a calibrated distance"
        elif system.template_protection is not None and not getattr(
            PROTECTIONS.get(system.template_protection), "encrypts", False
        ):
            # Encrypted matching computes the plain cosine (to 1e-4): the same public scores.
            refusal = f"its {system.template_protection} templates need a secret key"
        elif system.mitigation == "multi" and system.assign != "all":
            refusal = f"it calibrates each backbone on a {system.assign} share of the pairs"
        elif system.mitigation == "multi" and system.infer == "random":
            refusal = "each answer comes through a backbone drawn per query"
        if refusal is not None:
            raise AttackError(
                "the parameter attack reads a distance predictor's calibration from answers "
                f"that are a fixed function of public scores; this system is refused: {refusal}."
            )
        names = list(self.embedder.names)
        if system.mitigation == "none" or system.infer == "ensemble":
            answering = tuple(range(len(names)))
        else:
            answering = (names.index(system.fixed_backbone or names[0]),)
        public = system.calibration == "public"
        if public and not self.public_pairs:
            raise AttackError("the system calibrates on public pairs; give them (public_pairs).")
        l2 = create_predictor(system.predictor, **system.predictor_params).l2
        return CalibrationDesign(
            len(names), answering, float(l2), tuple(self.public_pairs) if public else None
        )

    def __call__(self, pairs: Sequence[Pair]) -> np.ndarray:
        score = get_predictor_class(self.params["predictor"]).score
        images = list(dict.fromkeys(p for pair in pairs for p in (pair.image1, pair.image2)))
        table = self.embedder.dataset(self.root, images)
        row = {image: i for i, image in enumerate(images)}
        first = np.array([row[pair.image1] for pair in pairs], dtype=np.int64)
        second = np.array([row[pair.image2] for pair in pairs], dtype=np.int64)
        width = max(b.embedding_dim for b in self.embedder.backbones)
        columns = []
        for name in self.embedder.names:
            matrix = np.zeros((len(images), width), dtype=np.float32)
            found = np.stack([table[name][image] for image in images])
            matrix[:, : found.shape[1]] = found
            columns.append(score(l2_normalize(matrix[first]), l2_normalize(matrix[second])))
        return np.stack(columns, axis=1)


def system_pair_scores(
    params: dict,
    embedder: Embedder,
    root: str | Path,
    public_pairs: Sequence[Pair] | None = None,
) -> SystemPairScores:
    """`SystemPairScores(params, embedder, root, public_pairs)`."""
    return SystemPairScores(params, embedder, root, public_pairs)
