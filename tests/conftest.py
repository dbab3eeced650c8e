"""Shared fixtures: the real LFW subset in ../shared/data, and embeddings of it.

Embedding all 2,057 images takes minutes (dlib runs ~9 faces/s per core), so the embedding
cache lives for the whole test session in `$FACEBONE_TEST_CACHE` if set (CI reuses it across
steps), else in a session temporary folder.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facebone.backbones import create_backbone
from facebone.data.lfw import scan_lfw
from facebone.data.pairs import make_protocol
from facebone.embeddings import EmbeddingCache, embed_images
from facebone.processes import dies_with_parent

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LFW_ROOT = SHARED_DATA / "lfw"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    if not LFW_ROOT.is_dir():
        pytest.fail(f"shared LFW data not found at {LFW_ROOT}")
    return LFW_ROOT


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("FACEBONE_TEST_CACHE")
    return Path(configured) if configured else tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def protocol(lfw_root):
    """The identity-disjoint pair protocol of the shared LFW images, seed 0."""
    return make_protocol(scan_lfw(lfw_root), seed=0)


@pytest.fixture(scope="session")
def backbone_pool():
    """Backbones created once per test session (dlib starts worker processes)."""
    created = {}

    def get(name: str):
        if name not in created:
            created[name] = create_backbone(name)
        return created[name]

    yield get
    for backbone in created.values():
        backbone.close()


@pytest.fixture(scope="session")
def lfw_embeddings(lfw_root, cache_dir, backbone_pool):
    """`get(name) -> ({image path: embedding}, report)` over all shared LFW images."""
    paths = [image.path for image in scan_lfw(lfw_root)]
    computed = {}

    def get(name: str) -> dict[str, np.ndarray]:
        if name not in computed:
            arrays, _ = embed_images(
                lfw_root, paths, [backbone_pool(name)], EmbeddingCache(cache_dir), progress=False
            )
            computed[name] = dict(zip(paths, arrays[name], strict=True))
        return computed[name]

    return get


@pytest.fixture(scope="session")
def demo_workdir(lfw_root, cache_dir, tmp_path_factory) -> Path:
    """The web demo's undefended and defended SFace systems (`workdir/<role>`), trained once."""
    from facebone.app.lab import prepare_systems

    workdir = tmp_path_factory.mktemp("demo-work")
    prepare_systems(lfw_root, workdir, EmbeddingCache(cache_dir))
    return workdir


@pytest.fixture(scope="session")
def sface_embedder(cache_dir, lfw_embeddings):
    """An SFace `Embedder` over the shared cache, filled once for all LFW images."""
    from facebone.embeddings.embedder import Embedder

    lfw_embeddings("sface")
    made = Embedder(["sface"], EmbeddingCache(cache_dir), progress=False)
    yield made
    made.close()


@pytest.fixture(scope="session")
def sface_dlib_embedder(cache_dir, lfw_embeddings):
    """An SFace + dlib `Embedder` over the shared cache, filled once for all LFW images."""
    from facebone.embeddings.embedder import Embedder

    lfw_embeddings("sface"), lfw_embeddings("dlib")
    made = Embedder(["sface", "dlib"], EmbeddingCache(cache_dir), progress=False)
    yield made
    made.close()


@pytest.fixture(scope="session")
def pair_membership():
    """`attack(system, params, embedder, root, members, nonmembers, attacker, attacks,
    n_shadows, queries=None)`: each attack's pair-level metrics against a trained system whose
    shadows are trained like it (its per-query draws seeded, so runs repeat)."""
    from facebone.attacks.membership.runner import evaluate_membership_attacks
    from facebone.attacks.system_target import SystemShadowTrainer, system_query_fn

    def attack(
        system,
        params,
        embedder,
        root,
        members,
        nonmembers,
        attacker,
        attacks,
        n_shadows,
        queries=None,
    ):
        system.reset_query_stream(1)
        results, _ = evaluate_membership_attacks(
            system_query_fn(system, root),
            SystemShadowTrainer(params, embedder, root),
            attacker,
            members,
            nonmembers,
            attacks=attacks,
            n_shadows=n_shadows,
            queries=queries,
            shadow_size=len(members),
        )
        return results["pair"]

    return attack


@pytest.fixture(scope="session")
def sface_cosine_models(tmp_path_factory, lfw_root, cache_dir, protocol, lfw_embeddings):
    """Seed 0's pair CSVs and two SFace + cosine models trained on them through the CLI:
    `plain`, and `protected` with BioHash templates (its key in `sface.key`). The key is
    seeded and fitted to the training faces as `train` fits a new one: a key drawn from the
    operating system's entropy would change what the tests measure from run to run."""
    from facebone.cli import main
    from facebone.data.pairs import write_pairs
    from facebone.protection import create_protection, save_keys

    sface = lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("sface-cosine-models")
    for role, pairs in protocol.items():
        write_pairs(root / f"{role}.csv", pairs)
    faces = dict.fromkeys(p for pair in protocol["target_train"] for p in pair[:2])
    # Seed 1: an attack's own key is drawn with its --seed, 0 by default, and must differ.
    key = create_protection("biohash", dim_in=128, seed=1).fit(np.stack([sface[p] for p in faces]))
    save_keys(root / "sface.key", {"sface": key})
    common = ["train", "--data", str(lfw_root), "--cache", str(cache_dir), "--json"]
    common += ["--pairs", str(root / "target_train.csv"), "--predictor", "cosine"]
    key = ["--template-protection", "biohash", "--key-file", str(root / "sface.key")]
    for name, extra in (("plain", []), ("protected", key)):
        assert main([*common, "--out", str(root / name), *extra]) == 0
    return root


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server with pgvector (the `pgserver` wheel) for the whole test session,
    started on first use, stopped and deleted at the end. Its data lives in a folder of its own,
    not under pytest's basetemp: another pytest run prunes old basetemps, and a server whose
    folder vanished stops answering."""
    import tempfile
    import warnings

    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR in CI containers
        warnings.simplefilter("ignore", UserWarning)
        import pgserver

    data = tempfile.mkdtemp(prefix="facebone-test-postgres-")
    server = pgserver.get_server(data, cleanup_mode="delete")
    # pg_ctl starts the server as a daemon, which outlives a killed pytest: a watchdog that
    # dies with this process stops it then.
    watchdog = subprocess.Popen(
        [sys.executable, "-c", POSTGRES_WATCHDOG, str(server.get_pid()), data],
        preexec_fn=dies_with_parent(),
    )
    yield server
    watchdog.kill()  # a normal end: the server is stopped here, not by the watchdog
    watchdog.wait()
    server.cleanup()


# Waits for SIGTERM (sent when pytest dies), then shuts the test server down at once (SIGQUIT
# to its postmaster: pg_ctl would refuse to run as root) and deletes its data.
POSTGRES_WATCHDOG = """
import os, shutil, signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
signal.sigwait({signal.SIGTERM})
postmaster = int(sys.argv[1])
os.kill(postmaster, signal.SIGQUIT)
deadline = time.monotonic() + 20
while time.monotonic() < deadline and os.path.exists(f"/proc/{postmaster}"):
    time.sleep(0.1)
shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    import secrets

    import psycopg

    name = f"facebone_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_server.get_uri(database=name)
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
