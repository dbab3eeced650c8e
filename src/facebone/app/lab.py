"""The demo's own systems: trained on known pairs, so membership inference has a truth to show.

Both are trained in the experiments' `leaking` regime (100 pairs) where membership inference
is known to work on the undefended system: `undefended` is SFace + nn, `defended` is SFace +
the cosine predictor, the configuration the privacy experiments found best. They live in a
work folder and are retrained only when their training pairs change.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from facebone.attacks.membership.base import MembershipAttack, cached_shadow_trainer
from facebone.attacks.registry import create_attack
from facebone.attacks.system_target import SystemShadowTrainer, system_query_fn
from facebone.data.lfw import scan_lfw
from facebone.data.pairs import Pair, make_protocol
from facebone.embeddings import EmbeddingCache
from facebone.embeddings.cache import content_hash
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import get_defense
from facebone.experiments.regimes import balanced_subset, get_regime
from facebone.faces.image import read_image_bytes
from facebone.system import FRSystem, load_system, save_system
from facebone.system.fr_system import pairs_sha256

SEED = 0
REGIME = "leaking"
# Role in the demo -> defense name in `experiments.defenses`.
ROLES = {"undefended": "none", "defended": "cosine"}


@dataclass(frozen=True)
class DemoPairs:
    """Members (the systems' training pairs), as many non-members, and the attacker's pairs."""

    members: list[Pair]
    nonmembers: list[Pair]
    attacker: list[Pair]

    @property
    def images(self) -> list[str]:
        every = self.members + self.nonmembers + self.attacker
        return list(dict.fromkeys(p for pair in every for p in (pair.image1, pair.image2)))


def demo_pairs(data: Path) -> DemoPairs:
    """The identity-disjoint protocol of `data` (seed 0), cut to the leaking regime's sizes."""
    protocol = make_protocol(scan_lfw(data), seed=SEED)
    regime = get_regime(REGIME)
    members = regime.training_pairs(protocol["target_train"], SEED)
    nonmembers = balanced_subset(
        protocol["target_test"], len(members), np.random.default_rng([SEED, 103])
    )
    attacker = regime.attacker_pairs(protocol["attacker"], len(members), SEED)
    return DemoPairs(members, nonmembers, attacker)


def prepare_systems(data: Path, workdir: Path, cache: EmbeddingCache) -> dict[str, Path]:
    """Train (or find already trained) each role's system; {role: model directory}.

    Also fills the embedding cache with every image of the demo's pairs, so the attack lab,
    which only reads the cache, never embeds a dataset image twice.
    """
    pairs = demo_pairs(data)
    regime = get_regime(REGIME)
    fingerprint = pairs_sha256(pairs.members)
    directories = {}
    for role, defense_name in ROLES.items():
        directory = workdir / role
        if not _trained_on(directory, fingerprint):
            params = get_defense(defense_name).system_params(regime.nn_params, SEED)
            embedder = Embedder(params["backbones"], cache, progress=False)
            try:
                embedder.dataset(data, pairs.images)
                system = FRSystem(**params).fit(embedder, data, pairs.members)
                save_system(system, directory)
            finally:
                embedder.close()
        directories[role] = directory
    return directories


def _trained_on(directory: Path, fingerprint: str) -> bool:
    """Is there a model here that loads, trained on these pairs? Else it is retrained."""
    if not directory.is_dir():
        return False
    try:
        system = load_system(directory, cache=None, progress=False)
    except FaceBoneError:
        return False
    system.embedder_.close()
    return system.training_pairs_sha256_ == fingerprint


class ReadOnlyCache(EmbeddingCache):
    """Reads cached embeddings of dataset images, stores none: uploads pass through the lab."""

    def put(self, backbone_key: str, digest: str, embedding: np.ndarray) -> None:
        return None


@dataclass(frozen=True)
class AttackVerdict:
    attack: str
    role: str
    score: float
    threshold: float

    @property
    def member(self) -> bool:
        return self.score >= self.threshold


class AttackLab:
    """Membership attacks fitted once against each demo system, then asked about one pair.

    Pairs name images relative to `data`, or by absolute path (an upload's temporary file).
    """

    def __init__(
        self,
        data: Path,
        directories: dict[str, Path],
        cache: EmbeddingCache,
        attacks: Sequence[str],
        n_shadows: int = 4,
    ) -> None:
        self.data = data
        self.pairs = demo_pairs(data)
        self.systems = {
            role: load_system(directory, ReadOnlyCache(cache.root), progress=False)
            for role, directory in directories.items()
        }
        self.attacks: dict[str, dict[str, MembershipAttack]] = {}
        for role, system in self.systems.items():
            shadows = cached_shadow_trainer(
                SystemShadowTrainer(system.get_params(), system.embedder_, data)
            )
            self.attacks[role] = {}
            for name in attacks:
                attack = create_attack(name, SEED)
                if hasattr(attack, "n_shadows"):
                    attack.n_shadows = n_shadows
                self.attacks[role][name] = attack.fit(shadows, self.pairs.attacker)

    def judge(self, pair: Pair) -> list[AttackVerdict]:
        """Every attack's membership score for `pair` against every system."""
        verdicts = []
        for role, system in self.systems.items():
            target = system_query_fn(system, self.data)
            for name, attack in self.attacks[role].items():
                score = float(attack.infer(target, [pair])[0])
                verdicts.append(AttackVerdict(name, role, score, float(attack.threshold_)))
        return verdicts

    def probabilities(self, pair: Pair) -> dict[str, float]:
        """Each system's own answer, P(same), for `pair`."""
        return {
            role: float(system.predict_proba(self.data, [pair])[0])
            for role, system in self.systems.items()
        }

    @cached_property
    def _member_images(self) -> dict[str, str]:
        """{content hash: path} of the member pairs' images."""
        return {
            content_hash(read_image_bytes(self.data / path)): path
            for pair in self.pairs.members
            for path in (pair.image1, pair.image2)
        }

    def is_member_pair(self, first: bytes, second: bytes) -> bool:
        """Are two uploaded files exactly the two images of a member pair (in either order)?"""
        found = {self._member_images.get(content_hash(data)) for data in (first, second)}
        return any(found == {pair.image1, pair.image2} for pair in self.pairs.members)

    def close(self) -> None:
        for system in self.systems.values():
            system.embedder_.close()
