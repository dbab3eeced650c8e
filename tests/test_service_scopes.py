"""What a server lets each client do: /embed only when enabled, and each route only to API keys
with its scope (real `facebone serve` processes, real LFW photos)."""

import httpx
import pytest

from facebone.cli import main
from facebone.service.process import running_server
from web_images import BLAIR, POWELL

VERIFIER = "verify-only-client-key-0"
IDENTIFIER = "identify-only-client-key"
EMBEDDER = "embed-and-verify-key-000"
SPENDER = "another-verify-only-key-1"


@pytest.fixture(scope="module")
def photos(lfw_root) -> list[bytes]:
    return [(lfw_root / path).read_bytes() for path in (*POWELL, BLAIR)]


@pytest.fixture(scope="module")
def sface_model(demo_workdir):
    return demo_workdir / "defended"


@pytest.fixture(scope="module")
def scoped(sface_model, tmp_path_factory):
    """/embed enabled; keys of different scopes, 2 answers each."""
    key_file = tmp_path_factory.mktemp("keys") / "api-keys"
    key_file.write_text(f"{VERIFIER}\n{IDENTIFIER} identify\n{EMBEDDER} embed,verify\n{SPENDER}\n")
    args = ["--api-key-file", str(key_file), "--enable-embed", "--query-budget", "2"]
    with running_server(sface_model, args) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def as_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def assert_refused(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {
        "error": f"this API key lacks the scope '{scope}' (grant it in the API key file)"
    }


def test_embed_is_absent_unless_enabled(sface_model, photos):
    """An open loopback server without --enable-embed: /verify answers, /embed does not exist
    (404, and not in the API schema)."""
    with running_server(sface_model) as url, httpx.Client(base_url=url, timeout=60) as client:
        embed = client.post("/embed", files={"img": photos[0]})
        verify = client.post("/verify", files={"img1": photos[0], "img2": photos[1]})
        schema = client.get("/openapi.json").json()
    assert embed.status_code == 404 and embed.json() == {"error": "Not Found"}
    assert verify.status_code == 200 and verify.json()["same"] is True
    assert "/verify" in schema["paths"] and "/embed" not in schema["paths"]


def test_each_route_answers_only_keys_with_its_scope(scoped, photos):
    pair = {"img1": photos[0], "img2": photos[2]}
    # A key without scopes may verify, nothing else; the refusal names the missing scope.
    assert scoped.post("/verify", files=pair, headers=as_key(VERIFIER)).status_code == 200
    assert_refused(
        scoped.post("/embed", files={"img": photos[0]}, headers=as_key(VERIFIER)), "embed"
    )
    # A key of other scopes may not verify.
    assert_refused(scoped.post("/verify", files=pair, headers=as_key(IDENTIFIER)), "verify")
    embedded = scoped.post("/embed", files={"img": photos[0]}, headers=as_key(EMBEDDER))
    assert embedded.status_code == 200 and len(embedded.json()["embeddings"]["sface"]) == 128
    # Any valid key still reads the docs and the model; without one, 401 as before.
    assert scoped.get("/openapi.json", headers=as_key(IDENTIFIER)).status_code == 200
    assert "sface" in scoped.get("/healthz", headers=as_key(IDENTIFIER)).json()["model"]
    assert scoped.post("/verify", files=pair).status_code == 401


def test_a_refusal_comes_before_the_body_and_costs_no_budget(scoped, photos):
    """The scope is checked before the body is read: a body that is not an image is refused
    for the scope, not for its content; refusals take nothing from the key's budget, and each
    key has a budget of its own."""
    for _ in range(3):
        assert_refused(
            scoped.post("/embed", files={"img": b"not an image"}, headers=as_key(VERIFIER)),
            "embed",
        )
    pair = {"img1": photos[0], "img2": photos[1]}
    answers = [scoped.post("/verify", files=pair, headers=as_key(SPENDER)) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    # The three refusals cost nothing: the verifier (at most one answer spent) has one left.
    assert scoped.post("/verify", files=pair, headers=as_key(VERIFIER)).status_code == 200


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("verify-only-client-key-0 verify,delete", "unknown scope 'delete'"),
        ("verify-only-client-key-0 verify embed", "not 'KEY' or 'KEY scope,scope'"),
        ("short verify", "shorter than 16 characters"),
    ],
)
def test_serve_refuses_a_bad_key_line(capsys, sface_model, tmp_path, line, words):
    (tmp_path / "keys").write_text(f"another-good-key-0000\n{line}\n")
    argv = ["serve", "--model", str(sface_model), "--api-key-file", str(tmp_path / "keys")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
