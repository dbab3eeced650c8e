"""`FRSystem`: answers "same person?" for image pairs through one or several backbones."""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.params import Interval, value_problem
from facebone.predictors import DistancePredictor, Predictor, create_predictor
from facebone.protection import PROTECTIONS, TemplateProtection, create_protection
from facebone.protection.attribute_suppression import AttributeSuppression
from facebone.system.policies import (
    ASSIGN_POLICIES,
    INFER_POLICIES,
    MITIGATIONS,
    assign_backbones,
    check_choice,
)
from facebone.system.split_distill import check_split_distill_options, fit_split_distill

THRESHOLD = 0.5
# What a system's predictor is fitted on: its members' pairs, or public pairs of other people.
CALIBRATIONS = ("members", "public")

# A system's seed: a user's (`params.SEED`) or one FaceBone derives (seed * 1000 + t).
SYSTEM_SEED = Interval(int, 0, 2**63 - 1)


@dataclass(frozen=True)
class Verification:
    same: bool
    probability: float
    backbone: str


def pairs_sha256(pairs: Sequence[Pair]) -> str:
    """Fingerprint of a training set, stored with the model to tell what it was trained on."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(f"{pair.image1},{pair.image2},{pair.label}\n".encode())
    return digest.hexdigest()


class FRSystem:
    """Embedder(s) + predictor, estimator-style: the constructor only stores options.

    `mitigation="none"` uses one backbone. `mitigation="multi"` trains the predictor on
    embeddings from several backbones (`assign`) and answers each query through a backbone
    chosen by `infer`; embeddings of different sizes are zero-padded to the largest, and the
    predictor is told which backbone each pair came from. `mitigation="split-distill"`
    (`split_distill.py`) trains `teacher` predictors on `shards` identity-disjoint shards and
    deploys only a predictor distilled from them on a set `distill_factor` times larger.

    `template_protection` (a name from `facebone.protection`) replaces each backbone's
    embeddings by keyed templates before the predictor sees them, in training and in every
    answer (`protect`); one key per backbone, given to `fit` or drawn from the operating
    system's entropy (and centred on the training faces, see `protection/biohash.py`). The keys
    are secret and never part of `get_params`. With `"ckks"` (`protection/ckks.py`) the
    templates are encrypted instead: each answer encrypts the first image's template, matches it
    under encryption with the plain second one, and calibrates the decrypted cosine, so it needs
    the cosine predictor. Its calibration is fitted on the training pairs' plain cosines, which
    the key holder computes where it embeds them; encryption moves a cosine by about 1e-5.

    `calibration="public"` (distance predictors, whose whole fit is a calibration) fits on
    `public_pairs` of other people given to `fit`, never on the members: the fitted numbers
    then carry nothing of who the members are (the defense against reading membership from
    them; `attacks/membership/parameter.py`).

    `attribute_suppression` (a number of directions) removes that many linear gender
    directions from each backbone's embeddings before anything else (INLP,
    `protection/attribute_suppression.py`), exactly that many: the held-out stop of INLP comes
    when a linear classifier is at chance, which leaves a nearest-neighbour attacker most of
    its accuracy. Each backbone's directions are fitted on the `public` pairs given to `fit`:
    their photos that have a gender label (from first names, or CelebA's `Male`), of people
    who must not be members; never on the training pairs. They depend on the public
    faces only, not on the members or the seed, and are no secret: in a study the attacker's
    split is the public set, so the attacker knows the projection exactly.

    Per-query backbone draws come from the operating system's entropy, so two processes never
    repeat a draw; `reset_query_stream(seed)` makes them reproducible for experiments.
    """

    def __init__(
        self,
        backbones: Sequence[str] = ("sface",),
        predictor: str = "nn",
        predictor_params: dict | None = None,
        mitigation: str = "none",
        assign: str = "all",
        infer: str = "random",
        fixed_backbone: str | None = None,
        seed: int = 0,
        shards: int = 4,
        teacher: str = "cosine",
        distill_factor: float = 4.0,
        template_protection: str | None = None,
        calibration: str = "members",
        attribute_suppression: int | None = None,
    ) -> None:
        self.backbones = tuple(backbones)
        self.predictor = predictor
        self.predictor_params = dict(predictor_params or {})
        self.mitigation = mitigation
        self.assign = assign
        self.infer = infer
        self.fixed_backbone = fixed_backbone
        self.seed = seed
        self.shards = shards
        self.teacher = teacher
        self.distill_factor = distill_factor
        self.template_protection = template_protection
        self.calibration = calibration
        self.attribute_suppression = attribute_suppression

    def get_params(self) -> dict:
        return {
            "backbones": list(self.backbones),
            "predictor": self.predictor,
            "predictor_params": dict(self.predictor_params),
            "mitigation": self.mitigation,
            "assign": self.assign,
            "infer": self.infer,
            "fixed_backbone": self.fixed_backbone,
            "seed": self.seed,
            "shards": self.shards,
            "teacher": self.teacher,
            "distill_factor": self.distill_factor,
            "template_protection": self.template_protection,
            "calibration": self.calibration,
            "attribute_suppression": self.attribute_suppression,
        }

    def _check_options(self) -> None:
        if not self.backbones or not all(isinstance(b, str) and b for b in self.backbones):
            raise FaceBoneError(f"backbones must be a list of backbone names, got {self.backbones}")
        if len(set(self.backbones)) != len(self.backbones):
            raise FaceBoneError(f"a backbone is listed twice: {', '.join(self.backbones)}")
        problem = value_problem([SYSTEM_SEED], self.seed)
        if problem is not None:
            raise FaceBoneError(f"seed {problem}")
        check_choice(self.mitigation, MITIGATIONS, "mitigation")
        check_choice(self.assign, ASSIGN_POLICIES, "assignment policy")
        check_choice(self.infer, INFER_POLICIES, "inference policy")
        if self.mitigation == "none" and len(self.backbones) != 1:
            raise FaceBoneError(
                f"mitigation 'none' uses one backbone, {len(self.backbones)} were given; "
                "use mitigation 'multi' for several"
            )
        if self.mitigation == "multi" and len(self.backbones) < 2:
            raise FaceBoneError("mitigation 'multi' needs at least two backbones")
        if self.mitigation == "split-distill":
            check_split_distill_options(
                self.predictor, self.shards, self.teacher, self.distill_factor
            )
        if self.template_protection is not None:
            # An unknown name fails before training.
            protection = PROTECTIONS.get(self.template_protection)
            if protection.encrypts and self.predictor != "cosine":
                raise FaceBoneError(
                    f"template protection {self.template_protection!r} matches encrypted "
                    "templates by their cosine with the plain probe, so it needs the cosine "
                    f"predictor, not {self.predictor!r}"
                )
        check_choice(self.calibration, CALIBRATIONS, "calibration")
        if self.calibration == "public" and (
            self.mitigation == "split-distill"
            or not isinstance(self._new_predictor(), DistancePredictor)
        ):
            raise FaceBoneError(
                "calibration 'public' is for distance predictors (cosine, euclidean, ...), whose "
                f"whole fit is a calibration; this system trains {self.predictor!r} with "
                f"mitigation {self.mitigation!r}"
            )
        n = self.attribute_suppression
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise FaceBoneError(
                f"attribute_suppression must be a number of directions (an integer from 0) or "
                f"None, got {n!r}"
            )
        # The predictor's options against its declared constraints, before any embedding.
        self._new_predictor()._check_params()

    def _new_predictor(self) -> Predictor:
        params = dict(self.predictor_params)
        if self.predictor == "nn":
            params.setdefault("seed", self.seed)
        # The registry turns arguments the predictor does not take into a one-line error.
        return create_predictor(self.predictor, **params)

    def _new_suppression(self) -> AttributeSuppression:
        return AttributeSuppression(self.attribute_suppression, tolerance=None)

    def fit(
        self,
        embedder: Embedder,
        root: str | Path,
        pairs: Sequence[Pair],
        keys: Mapping[str, TemplateProtection] | None = None,
        public_pairs: Sequence[Pair] | None = None,
        suppressions: Mapping[str, AttributeSuppression] | None = None,
    ) -> "FRSystem":
        """Train the predictor on labelled image pairs of the data folder `root` (DP-SGD
        through Opacus itself); `keys` (backbone name -> keyed protection) protect the
        templates when `template_protection` is set. `public_pairs` (other people's, never
        members) are what a system with `calibration="public"` fits its predictor on instead
        of `pairs`, and what an `attribute_suppression` is fitted on, unless `suppressions`
        (backbone name -> fitted suppression: a shadow copies its target's) are given."""
        options = {"keys": keys, "public_pairs": public_pairs, "suppressions": suppressions}
        return FRSystem.fit_many([self], embedder, root, [pairs], batched=False, **options)[0]

    @staticmethod
    def fit_many(
        systems: Sequence["FRSystem"],
        embedder: Embedder,
        root: str | Path,
        pair_sets: Sequence[Sequence[Pair]],
        batched: bool = True,
        keys: Mapping[str, TemplateProtection] | None = None,
        public_pairs: Sequence[Pair] | None = None,
        suppressions: Mapping[str, AttributeSuppression] | None = None,
    ) -> list["FRSystem"]:
        """Train systems that differ only in seed, each on its own pairs, in one batched run
        where the predictor allows it (shadow models: dozens at the cost of a few);
        `batched=False` fits each predictor on its own (`Predictor.fit`). Protected systems
        share `keys`, or each draws its own when it is None. Systems with
        `calibration="public"` all fit on `public_pairs` instead of their own pairs; systems
        with attribute suppression share `suppressions`, or one fitted on `public_pairs`."""
        systems = list(systems)
        if len(systems) != len(pair_sets) or not systems:
            raise FaceBoneError("fit_many needs one list of training pairs per system")
        first = systems[0]
        if first.calibration == "public" and not public_pairs:
            raise FaceBoneError(
                "calibration 'public' needs public_pairs, of people who are not members"
            )
        if public_pairs and first.calibration != "public" and first.attribute_suppression is None:
            raise FaceBoneError(
                "public_pairs were given but the system uses none: it calibrates on its "
                "members and suppresses no attribute"
            )
        members = list(pair_sets)
        if first.calibration == "public":
            pair_sets = [list(public_pairs)] * len(systems)
        options = {k: v for k, v in systems[0].get_params().items() if k != "seed"}
        for system, pairs in zip(systems, pair_sets, strict=True):
            if {k: v for k, v in system.get_params().items() if k != "seed"} != options:
                raise FaceBoneError("fit_many trains systems that differ only in seed")
            system._check_options()
            if list(embedder.specs) != list(system.backbones):
                raise FaceBoneError("the embedder's backbones differ from the system's")
            if not pairs:
                raise FaceBoneError("no training pairs")
        fitted = first._suppressions(embedder, root, public_pairs, members, suppressions)
        for system, pairs in zip(systems, pair_sets, strict=True):
            system.embedder_ = embedder
            system.suppressions_ = fitted
            system.protections_ = system._protections(keys, root, pairs)
            system.embedding_dim_ = max(
                system._template_dim(b.name, b.embedding_dim) for b in embedder.backbones
            )
            if system.infer == "fixed" and system.mitigation != "none":
                system._fixed_index()  # a backbone that is not there fails before training
        if systems[0].mitigation == "split-distill":
            predictors = fit_split_distill(systems, root, pair_sets)
        else:
            predictors = [system._new_predictor() for system in systems]
            datasets = [s._training_rows(root, p) for s, p in zip(systems, pair_sets, strict=True)]
            if batched:
                predictors = type(predictors[0]).fit_many(predictors, datasets)
            else:
                predictors = [p.fit(*d) for p, d in zip(predictors, datasets, strict=True)]
        for system, pairs, predictor in zip(systems, pair_sets, predictors, strict=True):
            system.predictor_ = predictor
            system.training_pairs_sha256_ = pairs_sha256(pairs)
            system.n_training_pairs_ = len(pairs)
            # What the calibration or the attribute suppression was fitted on.
            system.public_pairs_sha256_ = pairs_sha256(public_pairs) if public_pairs else None
            system.reset_query_stream()
        return systems

    def _protections(
        self,
        keys: Mapping[str, TemplateProtection] | None,
        root: str | Path,
        pairs: Sequence[Pair],
    ) -> dict[str, TemplateProtection]:
        """Backbone name -> keyed protection (none without template protection): `keys`, or
        new keys from the operating system's entropy fitted to the training faces."""
        if self.template_protection is None:
            if keys:
                raise FaceBoneError("keys were given but the system has no template protection")
            return {}
        if keys is not None:
            return self._checked_keys(keys)
        images = _images(pairs)
        table = self.embedder_.dataset(root, images)
        return {
            b.name: create_protection(self.template_protection, dim_in=b.embedding_dim).fit(
                self.suppress(b.name, np.stack([table[b.name][image] for image in images]))
            )
            for b in self.embedder_.backbones
        }

    def _suppressions(
        self,
        embedder: Embedder,
        root: str | Path,
        public: Sequence[Pair] | None,
        member_sets: Sequence[Sequence[Pair]],
        given: Mapping[str, AttributeSuppression] | None,
    ) -> dict[str, AttributeSuppression]:
        """Backbone name -> attribute suppression (none without attribute suppression): the
        `given` ones, or fitted on the labelled photos of the `public` pairs, where a public
        person who is also a member is refused."""
        from facebone.data.attributes import GENDER, dataset_images, load_attribute_labels

        if self.attribute_suppression is None:
            if given:
                raise FaceBoneError("attribute suppressions were given but the system has none")
            return {}
        if given is not None:
            return self._checked_suppressions(embedder, given)
        if not public:
            raise FaceBoneError(
                "attribute suppression is fitted on public faces of people who are not "
                "members; give public pairs"
            )
        person = {image.path: image.identity for image in dataset_images(root)}
        public_people = {person.get(path, path) for path in _images(public)}
        members = {person.get(path, path) for pairs in member_sets for path in _images(pairs)}
        shared = public_people & members
        if shared:
            raise FaceBoneError(
                f"{len(shared)} of the public pairs' people are members too (e.g. "
                f"{min(shared)}); attribute suppression is fitted on other people only"
            )
        labels = load_attribute_labels(root, GENDER)
        images, y, _ = labels.select(_images(public))
        paths = [image.path for image in images]
        if not paths:
            raise FaceBoneError(f"none of the public photos has a {GENDER} label")
        table = embedder.dataset(root, paths)
        fitted = {}
        for name in embedder.names:
            X = np.stack([table[name][path] for path in paths])
            fitted[name] = self._new_suppression().fit(X, y, [i.identity for i in images])
        return fitted

    def _checked_suppressions(
        self, embedder: Embedder, given: Mapping[str, AttributeSuppression]
    ) -> dict[str, AttributeSuppression]:
        """`given`, checked to be fitted, one per backbone, with the system's number of
        directions."""
        dims = {b.name: b.embedding_dim for b in embedder.backbones}
        if sorted(given) != sorted(dims):
            raise FaceBoneError(
                f"attribute suppressions are for backbones {', '.join(sorted(given))}, the "
                f"system has {', '.join(dims)}"
            )
        for name, suppression in given.items():
            suppression._check_fitted()
            if (suppression.n_directions, suppression.n_features_in_) != (
                self.attribute_suppression,
                dims[name],
            ):
                raise FaceBoneError(
                    f"the attribute suppression for {name} removes up to "
                    f"{suppression.n_directions} directions of {suppression.n_features_in_}-D "
                    f"embeddings; the system needs {self.attribute_suppression} of "
                    f"{dims[name]}-D"
                )
        return dict(given)

    def _checked_keys(
        self, keys: Mapping[str, TemplateProtection]
    ) -> dict[str, TemplateProtection]:
        """`keys`, checked to fit the backbones: a key for another backbone would silently
        scramble its templates."""
        backbones = self.embedder_.backbones
        if sorted(keys) != sorted(b.name for b in backbones):
            raise FaceBoneError(
                f"keys are for backbones {', '.join(sorted(keys))}, the system has "
                f"{', '.join(b.name for b in backbones)}"
            )
        for b in backbones:
            key = keys[b.name]
            if key.name != self.template_protection or key.dim_in != b.embedding_dim:
                raise FaceBoneError(
                    f"the key for {b.name} is a {key.name} key for {key.dim_in}-D embeddings; "
                    f"the system needs {self.template_protection} for {b.embedding_dim}-D"
                )
        return dict(keys)

    def _template_dim(self, backbone: str, embedding_dim: int) -> int:
        protection = self.protections_.get(backbone)
        return embedding_dim if protection is None else protection.output_dim

    def protect(self, backbone: str, embeddings: np.ndarray) -> np.ndarray:
        """The templates the system stores and matches for `backbone`'s embeddings `(N, D)`:
        `suppress`ed, then protected with that backbone's key; the embeddings themselves
        (float32) when the system has neither; with encrypted templates, the unit vectors that
        are encrypted (and probes as the server sees them)."""
        templates = self.suppress(backbone, embeddings)
        if self.template_protection is None:
            return templates
        if not hasattr(self, "protections_"):  # set when fitting starts
            self.check_fitted()
        if backbone not in self.protections_:
            raise FaceBoneError(
                f"no key for backbone {backbone!r}; the system's are {', '.join(self.protections_)}"
            )
        return self.protections_[backbone].transform(templates)

    def suppress(self, backbone: str, embeddings: np.ndarray) -> np.ndarray:
        """`backbone`'s embeddings `(N, D)` with the attribute directions removed (unit
        length, float32); the embeddings themselves without attribute suppression."""
        if self.attribute_suppression is None:
            return np.asarray(embeddings, dtype=np.float32)
        if not hasattr(self, "suppressions_"):  # set when fitting starts
            self.check_fitted()
        if backbone not in self.suppressions_:
            raise FaceBoneError(
                f"no attribute suppression for backbone {backbone!r}; the system's are "
                f"{', '.join(self.suppressions_)}"
            )
        return self.suppressions_[backbone].transform(embeddings)

    def _training_rows(self, root: str | Path, pairs: Sequence[Pair]) -> tuple:
        """`(e1, e2, y, source)` of the training rows the assignment policy makes."""
        rng = np.random.default_rng([self.seed, 0])
        rows, sources = assign_backbones(len(pairs), len(self.backbones), self._assign(), rng)
        e1, e2 = self._pair_embeddings(root, [pairs[i] for i in rows], sources)
        return e1, e2, pair_labels(pairs)[rows], sources

    def _assign(self) -> str:
        return "all" if self.mitigation == "none" else self.assign

    def reset_query_stream(self, seed: int | None = None) -> None:
        """Restart the per-query backbone draws: from `seed` (the same seed gives the same
        answers), or from the operating system's entropy when `seed` is None."""
        self._query_rng = np.random.default_rng(None if seed is None else [seed, 1])

    def _pad(self, vector: np.ndarray) -> np.ndarray:
        padded = np.zeros(self.embedding_dim_, dtype=np.float32)
        padded[: len(vector)] = vector
        return padded

    def _pair_embeddings(
        self, root: str | Path, pairs: Sequence[Pair], sources: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Zero-padded embeddings of each pair's images through the backbone `sources` names;
        each distinct image is looked up once (shadows ask for thousands of pairs at a time)."""
        images = _images(pairs)
        table = self.embedder_.dataset(root, images)
        row = {image: i for i, image in enumerate(images)}
        first = np.array([row[pair.image1] for pair in pairs], dtype=np.int64)
        second = np.array([row[pair.image2] for pair in pairs], dtype=np.int64)
        sources = np.asarray(sources)
        e1 = np.zeros((len(pairs), self.embedding_dim_), dtype=np.float32)
        e2 = np.zeros_like(e1)
        for k, name in enumerate(self.embedder_.names):
            chosen = sources == k
            if chosen.any():
                matrix = self.protect(name, np.stack([table[name][image] for image in images]))
                e1[chosen, : matrix.shape[1]] = matrix[first[chosen]]
                e2[chosen, : matrix.shape[1]] = matrix[second[chosen]]
        return e1, e2

    def check_fitted(self) -> None:
        if not hasattr(self, "predictor_"):
            raise FaceBoneError("this FR system is not trained yet; call fit or load a model")

    def _query_sources(self, n: int) -> np.ndarray | None:
        """Backbone index answering each of `n` queries; None means the ensemble."""
        if self.mitigation == "none":
            return np.zeros(n, dtype=np.int64)
        if self.infer == "ensemble":
            return None
        if self.infer == "fixed":
            return np.full(n, self._fixed_index(), dtype=np.int64)
        return self._query_rng.integers(len(self.backbones), size=n)

    def _fixed_index(self) -> int:
        name = self.fixed_backbone or self.embedder_.names[0]
        if name not in self.embedder_.names:
            raise FaceBoneError(
                f"fixed backbone {name!r} is not one of the system's backbones "
                f"({', '.join(self.embedder_.names)})"
            )
        return self.embedder_.names.index(name)

    def _answer(self, predict, n: int) -> tuple[np.ndarray, list[str]]:
        """Probabilities for `n` queries; `predict(sources)` answers them through the
        backbone indices `sources`."""
        sources = self._query_sources(n)
        names = self.embedder_.names
        if sources is None:
            per_backbone = [predict(np.full(n, k)) for k in range(len(names))]
            return np.mean(per_backbone, axis=0), ["ensemble"] * n
        return predict(sources), [names[s] for s in sources]

    def _predict_distinct(
        self, root: str | Path, pairs: Sequence[Pair], sources: np.ndarray
    ) -> np.ndarray:
        """The predictor's answers, each distinct (pair, backbone) computed once: an attacker
        asking every pair 16 times sends mostly repeats."""
        keys = [(p.image1, p.image2, int(s)) for p, s in zip(pairs, sources, strict=True)]
        distinct = list(dict.fromkeys(keys))
        row = {key: i for i, key in enumerate(distinct)}
        chosen = np.array([key[2] for key in distinct], dtype=np.int64)
        asked = [Pair(first, second, 0) for first, second, _ in distinct]
        answers = self._match(*self._pair_embeddings(root, asked, chosen), chosen)
        return answers[[row[key] for key in keys]]

    def _match(self, e1: np.ndarray, e2: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """The predictor's probabilities for template pairs through backbones `sources`; with
        encrypted templates, of the cosines of the encrypted `e1` with the plain `e2`, each
        backbone's pairs packed into one batch."""
        protection = self.template_protection
        if protection is None or not PROTECTIONS.get(protection).encrypts:
            return self.predictor_.predict_proba(e1, e2, sources)
        scores = np.empty(len(sources))
        for k, name in enumerate(self.embedder_.names):
            rows = sources == k
            if rows.any():
                key = self.protections_[name]
                width = key.dim_in  # the zero padding adds nothing to a cosine
                scores[rows] = key.encrypted_cosines(e1[rows, :width], e2[rows, :width])
        return self.predictor_.predict_proba_of_scores(scores, sources)

    def answer_distribution(
        self, root: str | Path, pairs: Sequence[Pair]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every answer the system may give to `pairs`, with its probability: answers of
        shape (K, N) and weights (K,). With random inference row k is every pair answered
        through backbone k, drawn with probability 1/K; other policies answer one way
        (weight 1). Metrics weighted so (`metrics.verification_metrics`) are the expectation
        over the draws: reproducible, while `answer` still draws from the OS's entropy."""
        self.check_fitted()
        if self.mitigation == "none" or self.infer != "random":
            return self.predict_proba(root, pairs)[np.newaxis], np.ones(1)
        n, k = len(pairs), len(self.backbones)
        answers = [self._predict_distinct(root, pairs, np.full(n, b)) for b in range(k)]
        return np.stack(answers), np.full(k, 1.0 / k)

    def predict_proba(self, root: str | Path, pairs: Sequence[Pair]) -> np.ndarray:
        """Same-person probability for image pairs of the data folder `root`."""
        return self.answer(root, pairs)[0]

    def answer(self, root: str | Path, pairs: Sequence[Pair]) -> tuple[np.ndarray, list[str]]:
        """Probabilities and the backbone that answered each pair."""
        self.check_fitted()
        if not pairs:
            return np.empty(0), []
        return self._answer(
            lambda sources: self._predict_distinct(root, pairs, sources), len(pairs)
        )

    def verify(
        self,
        image1: str | Path,
        image2: str | Path,
        convert_color: bool = False,
        faces: tuple[int, int] = (1, 1),
    ) -> Verification:
        """Are the faces in two photos the same person? `faces` numbers the face to use in
        each photo (1: the one covering the centre, else the largest).

        Only the backbones that answer embed the photos, both photos in one batch.
        """
        self.check_fitted()
        photos = [
            self.embedder_.photo_face(path, convert_color, number)
            for path, number in zip((image1, image2), faces, strict=True)
        ]
        names = self.embedder_.names

        def embed_pair(sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            wanted = {names[s] for s in sources}
            embedded = self.embedder_.embed_faces(photos, [n for n in names if n in wanted])
            embedded = {name: self.protect(name, e) for name, e in embedded.items()}
            return (
                np.stack([self._pad(embedded[names[s]][0]) for s in sources]),
                np.stack([self._pad(embedded[names[s]][1]) for s in sources]),
            )

        probabilities, answered_by = self._answer(
            lambda sources: self._match(*embed_pair(sources), sources), 1
        )
        probability = float(probabilities[0])
        return Verification(probability >= THRESHOLD, probability, answered_by[0])


def _images(pairs: Sequence[Pair]) -> list[str]:
    """The distinct images of `pairs`, in first-seen order."""
    return list(dict.fromkeys(p for pair in pairs for p in (pair.image1, pair.image2)))
