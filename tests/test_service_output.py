"""Output hardening and the query budget: what a client sees of a real system's answers on LFW
pairs, and how many answers it gets, in the library and through `facebone serve`."""

import httpx
import numpy as np
import pytest
from fastapi import HTTPException

from facebone.attacks.system_target import system_query_fn
from facebone.embeddings import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.service.guards import QueryBudget
from facebone.service.process import running_server
from facebone.system import load_system
from facebone.system.output_policy import OutputPolicy, harden_queries
from web_images import BLAIR, POWELL, no_face

KEYS = ("first-client-key-0000", "second-client-key-111")


@pytest.fixture(scope="module")
def sface_model(demo_workdir):
    return demo_workdir / "defended"


@pytest.fixture(scope="module")
def answers(sface_model, lfw_root, cache_dir, protocol):
    """The demo's SFace + cosine system's P(same) for the identity-disjoint test pairs."""
    system = load_system(sface_model, cache=EmbeddingCache(cache_dir), progress=False)
    try:
        pairs = protocol["target_test"]
        yield system_query_fn(system, lfw_root), pairs, system.predict_proba(lfw_root, pairs)
    finally:
        system.embedder_.close()


def test_every_policy_keeps_every_decision(answers):
    _, _, probabilities = answers
    assert len(np.unique(probabilities)) > 100  # the raw answers are fine-grained
    decided = probabilities >= 0.5
    for name, levels in (("coarse", np.round(np.arange(0.05, 1, 0.1), 12)), ("decision", [0, 1])):
        shown = OutputPolicy(name)(probabilities)
        assert np.array_equal(shown >= 0.5, decided), name
        assert set(np.unique(shown)) <= set(levels), name
    coarse = OutputPolicy("coarse")(probabilities)
    assert np.all(np.abs(coarse - probabilities) <= 0.05 + 1e-12)
    assert np.array_equal(OutputPolicy()(probabilities), probabilities)


def test_answers_at_the_threshold_never_round_across_it():
    coarse = OutputPolicy("coarse")
    assert coarse(np.nextafter(0.5, 0)) == 0.45 and coarse(0.5) == 0.55
    assert coarse(0.0) == 0.05 and coarse(1.0) == 0.95
    assert OutputPolicy("coarse", step=0.25)(np.array([0.49, 0.5, 1.0])).tolist() == [
        0.375,
        0.625,
        0.875,
    ]
    with pytest.raises(FaceBoneError, match="band edge"):
        OutputPolicy("coarse", step=0.3)
    with pytest.raises(FaceBoneError, match="unknown output policy"):
        OutputPolicy("rounded")


def test_hardened_queries_are_what_an_attack_sees(answers):
    """A study hands attacks the hardened query function: the same pairs, the policy's view."""
    ask, pairs, probabilities = answers
    hardened = harden_queries(ask, OutputPolicy("decision"))(pairs[:40])
    assert np.array_equal(hardened, (probabilities[:40] >= 0.5).astype(float))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_query_budget_counts_per_client_and_gives_back_failures():
    clock = Clock()
    budget = QueryBudget(2, window=60, clock=clock)
    for _ in range(2):
        with budget.spend("key 1"):
            pass
    with pytest.raises(ValueError), budget.spend("key 2"):  # a failed request costs nothing
        raise ValueError("no face")
    with budget.spend("key 2"), budget.spend("key 2"):
        pass
    with pytest.raises(HTTPException, match="used up") as refused, budget.spend("key 1"):
        pass
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "60"
    clock.now += 59
    with pytest.raises(HTTPException, match="more in 1 s"), budget.spend("key 1"):
        pass
    clock.now += 1  # a new window: a new count
    with budget.spend("key 1"):
        pass
    forever = QueryBudget(1)
    with forever.spend("address 127.0.0.1"):
        pass
    clock.now += 10**9
    restart = "only when the server restarts"
    with pytest.raises(HTTPException, match=restart), forever.spend("address 127.0.0.1"):
        pass


@pytest.fixture(scope="module")
def hardened(sface_model, tmp_path_factory):
    """Decisions only, 2 answers per key."""
    key_file = tmp_path_factory.mktemp("keys") / "api-keys"
    key_file.write_text(f"{KEYS[0]}\n{KEYS[1]} verify,embed\n")
    args = ["--api-key-file", str(key_file), "--output", "decision", "--query-budget", "2"]
    args.append("--enable-embed")
    with running_server(sface_model, args) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_the_service_shows_decisions_only_within_each_clients_budget(hardened, lfw_root):
    photos = [(lfw_root / path).read_bytes() for path in (*POWELL, BLAIR)]
    first, second = ({"X-API-Key": key} for key in KEYS)

    def verify(headers: dict, one: bytes, two: bytes) -> httpx.Response:
        return hardened.post("/verify", files={"img1": one, "img2": two}, headers=headers)

    same, different = verify(first, *photos[:2]), verify(first, photos[0], photos[2])
    assert same.json()["probability"] == 1.0 and different.json()["probability"] == 0.0
    assert same.json()["output"] == "decision" and same.json()["same"] is True
    refused = verify(first, *photos[:2])
    assert refused.status_code == 429 and "2 answers" in refused.json()["error"]
    assert "restarts" in refused.json()["error"]
    # The second key is a client of its own; a failed request and /embed count as they should.
    assert verify(second, no_face(), photos[0]).status_code == 422
    assert hardened.post("/embed", files={"img": photos[0]}, headers=second).status_code == 200
    assert verify(second, *photos[:2]).status_code == 200
    assert verify(second, *photos[:2]).status_code == 429
