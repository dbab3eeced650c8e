"""The REST API over real HTTP: `facebone serve` on 127.0.0.1, real LFW photos, bad input."""

import base64
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from facebone.cli import main
from facebone.data.pairs import Pair
from facebone.embeddings import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.service.process import running_server
from facebone.system import FRSystem, load_system, save_system
from facebone.uploads import MAX_UPLOAD_BYTES
from process_checks import is_alive
from web_images import (
    BLAIR,
    BLAIR_OTHER,
    POWELL,
    gray_face,
    header_only_png,
    large_face,
    no_face,
    too_many_pixels,
    two_faces,
)

API_KEY = "k" * 24
OTHER_KEY = "another-client-key-0123"


@pytest.fixture(scope="module")
def photos(lfw_root) -> dict[str, bytes]:
    return {path: (lfw_root / path).read_bytes() for path in (*POWELL, BLAIR)}


@pytest.fixture(scope="module")
def sface_model(demo_workdir):
    return demo_workdir / "defended"


@pytest.fixture(scope="module")
def server(sface_model):
    """An open server on loopback (no keys: every route answers), /embed enabled."""
    args = ["--enable-embed"]
    with running_server(sface_model, args) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def verify(client: httpx.Client, first: bytes, second: bytes, **kwargs) -> httpx.Response:
    return client.post("/verify", files={"img1": first, "img2": second}, **kwargs)


def assert_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and words in body["error"], body
    assert "Traceback" not in response.text


def test_verify_answers_same_and_different_people(server, photos):
    same = verify(server, photos[POWELL[0]], photos[POWELL[1]])
    different = verify(server, photos[POWELL[0]], photos[BLAIR])
    assert same.status_code == 200 and different.status_code == 200
    assert set(same.json()) == {"same", "probability", "threshold", "output", "model", "time_ms"}
    assert same.json()["output"] == "probability"
    assert same.json()["same"] is True and same.json()["probability"] > 0.5
    assert different.json()["same"] is False and different.json()["probability"] < 0.5
    assert same.json()["threshold"] == 0.5 and "sface" in same.json()["model"]
    assert 0 < same.json()["time_ms"] < 5000


def test_face_numbers_pick_the_face_in_a_photo_of_several(server, photos, lfw_root):
    """Blair and Powell side by side: against another photo of Blair, one face matches."""
    both, blair = two_faces(lfw_root), (lfw_root / BLAIR_OTHER).read_bytes()
    answers = [verify(server, both, blair, params={"face1": n}).json()["same"] for n in (1, 2)]
    assert sorted(answers) == [False, True]
    assert_error(verify(server, both, blair, params={"face1": 9}), 422, "no face number 9")
    assert_error(verify(server, both, blair, params={"face2": 0}), 422, "face2")


def test_base64_json_gives_the_multipart_answer(server, photos):
    first = base64.b64encode(photos[POWELL[0]]).decode()
    second = "data:image/jpeg;base64," + base64.b64encode(photos[BLAIR]).decode()
    as_json = server.post("/verify", json={"img1": first, "img2": second}).json()
    as_files = verify(server, photos[POWELL[0]], photos[BLAIR]).json()
    assert as_json["probability"] == pytest.approx(as_files["probability"], abs=1e-9)


def test_embed_gives_the_library_embedding(server, photos, sface_model, lfw_root):
    response = server.post("/embed", files={"img": photos[BLAIR]})
    assert response.status_code == 200, response.text
    served = np.array(response.json()["embeddings"]["sface"])
    system = load_system(sface_model, cache=None, progress=False)
    expected = system.embedder_.photo(lfw_root / BLAIR)["sface"]
    assert served.shape == (128,) and np.allclose(served, expected, atol=1e-5)


def test_bad_inputs_get_4xx_json_errors(server, photos, lfw_root):
    face = photos[BLAIR]
    assert_error(verify(server, b"not an image at all", face), 400, "img1: not an image")
    assert_error(server.post("/verify", files={"img1": face}), 400, "img2 is missing")
    assert_error(server.post("/verify", json={"img1": "@@@", "img2": "x"}), 400, "base64")
    assert_error(server.post("/verify", json=[1, 2]), 400, "must be an object")
    assert_error(
        server.post("/verify", content=b"{", headers={"content-type": "application/json"}),
        400,
        "not valid JSON",
    )
    assert_error(server.post("/verify", data={"img1": "a"}), 415, "unsupported content type")
    assert_error(verify(server, no_face(), face), 422, "img1: no face found")
    # In the API's words: the field, not the server's temporary file; the query parameter,
    # not the command-line flag.
    gray = verify(server, face, gray_face(lfw_root))
    assert_error(gray, 400, "img2: image is grayscale")
    assert "convert_color=true" in gray.text and "--" not in gray.text and "/tmp" not in gray.text
    converted = verify(server, gray_face(lfw_root), face, params={"convert_color": "true"})
    assert converted.status_code == 200 and converted.json()["same"] is True
    assert_error(
        verify(server, face, face, params={"convert_color": "perhaps"}), 422, "convert_color"
    )
    assert_error(server.get("/nowhere"), 404, "Not Found")
    assert_error(server.get("/verify"), 405, "Method Not Allowed")


def test_hostile_json_and_numbers_get_400_not_500(server, photos):
    as_json = {"content-type": "application/json"}
    nested = b"[" * 100_000 + b"]" * 100_000
    assert_error(server.post("/verify", content=nested, headers=as_json), 400, "nests too deeply")
    long_number = b'{"img1": ' + b"9" * 5000 + b', "img2": "x"}'
    assert_error(
        server.post("/verify", content=long_number, headers=as_json), 400, "number too long"
    )
    face = photos[BLAIR]
    assert_error(verify(server, face, face, params={"face1": "9" * 5000}), 422, "face1")


def test_size_limits(server, photos):
    face = photos[BLAIR]
    assert_error(verify(server, b"\xff" * (MAX_UPLOAD_BYTES + 1), face), 413, "10 MB")
    assert_error(verify(server, too_many_pixels(), face), 413, "20 megapixels")
    # A header PIL itself refuses to open (far over its own limit) is too large, not "no image".
    assert_error(verify(server, face, header_only_png(30000, 30000)), 413, "img2")
    huge = base64.b64encode(b"\0" * (MAX_UPLOAD_BYTES + 1024)).decode()
    assert_error(server.post("/verify", json={"img1": huge, "img2": "x"}), 413, "10 MB")
    assert_error(server.post("/verify", content=b"\0" * (31 << 20)), 413, "request body over")


def test_health_and_docs_need_no_internet(server):
    """The docs pages load their scripts from the server itself, never from a CDN."""
    assert server.get("/healthz").json() == {"status": "ok", "model": "sface, cosine predictor"}
    for page in ("/docs", "/redoc"):
        html = server.get(page)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets and all(url.startswith("/docs/assets/") for url in assets), assets
        for url in assets:
            asset = server.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
        assert "https://" not in html.text
    body = server.get("/openapi.json").json()["paths"]["/verify"]["post"]["requestBody"]
    assert set(body["content"]) == {"multipart/form-data", "application/json"}


@pytest.mark.slow
def test_bounded_load_run_answers_every_request_right(server, photos):
    """8 clients, 48 requests: every one answered 200 with the right decision."""
    cases = [(POWELL[0], POWELL[1], True), (POWELL[1], BLAIR, False)] * 24

    def ask(case):
        first, second, expected = case
        response = verify(server, photos[first], photos[second])
        return response.status_code, response.json().get("same"), expected

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, cases))
    assert [status for status, _, _ in answers] == [200] * len(cases)
    assert all(same is expected for _, same, expected in answers)


@pytest.fixture(scope="module")
def guarded(sface_model, tmp_path_factory):
    key_file = tmp_path_factory.mktemp("key") / "api-key"
    key_file.write_text(f"{API_KEY}\n\n{OTHER_KEY}\n")
    args = ["--api-key-file", str(key_file), "--max-concurrent", "1"]
    with running_server(sface_model, args) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_api_key_is_required_when_configured(guarded, photos):
    face = photos[BLAIR]
    assert_error(verify(guarded, face, face), 401, "API key")
    assert_error(verify(guarded, face, face, headers={"X-API-Key": "wrong"}), 401, "API key")
    for key in (API_KEY, OTHER_KEY):  # every line of the key file is a key
        assert verify(guarded, face, face, headers={"X-API-Key": key}).status_code == 200


def test_with_keys_only_a_bare_liveness_answer_is_public(guarded):
    """Without the key: /healthz says it is up and nothing more; the docs, the schema, the
    docs' assets and unknown paths all answer 401, so a stranger learns neither the model
    nor the API."""
    assert guarded.get("/healthz").json() == {"status": "ok"}
    keyed = {"X-API-Key": API_KEY}
    assert "sface" in guarded.get("/healthz", headers=keyed).json()["model"]
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css", "/nowhere"):
        assert_error(guarded.get(path), 401, "API key")
        assert guarded.get(path, headers=keyed).status_code == (404 if path == "/nowhere" else 200)
    security = guarded.get("/openapi.json", headers=keyed).json()["components"]["securitySchemes"]
    assert [scheme["name"] for scheme in security.values()] == ["X-API-Key"]


def test_requests_over_the_concurrency_cap_get_503(guarded, lfw_root):
    """Cap 1: of 6 requests sent at once with large photos, the server takes one at a time."""
    big = large_face(lfw_root)
    start = threading.Barrier(6)

    def ask(_):
        start.wait()
        return verify(guarded, big, big, headers={"X-API-Key": API_KEY})

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(ask, range(6)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    busy = next(response for response in responses if response.status_code == 503)
    assert_error(busy, 503, "server busy")
    assert busy.headers["retry-after"] == "1"


def test_serve_refuses_bad_options(capsys, sface_model):
    assert main(["serve", "--model", str(sface_model), "--host", "0.0.0.0"]) == 2
    assert "--api-key-file" in capsys.readouterr().err
    with running_server(sface_model) as url:
        port = url.rsplit(":", 1)[1]
        assert main(["serve", "--model", str(sface_model), "--port", port]) == 2
        err = capsys.readouterr().err
    assert err.startswith("facebone: error: cannot listen") and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def multi_model(lfw_root, cache_dir, protocol, tmp_path_factory):
    """SFace + dlib, cosine predictor, a backbone drawn per query, trained on 12 pairs."""
    pairs: list[Pair] = protocol["target_train"][:12]
    embedder = Embedder(["sface", "dlib"], EmbeddingCache(cache_dir), progress=False)
    try:
        system = FRSystem(
            backbones=["sface", "dlib"], predictor="cosine", mitigation="multi", infer="random"
        ).fit(embedder, lfw_root, pairs)
        directory = tmp_path_factory.mktemp("multi") / "model"
        save_system(system, directory)
    finally:
        embedder.close()
    return directory


@pytest.mark.slow
def test_multi_backbone_answers_vary_per_request(multi_model, photos):
    """Each request draws its backbone: the same pair asked 12 times gets both backbones'
    answers (all 12 through one backbone has probability 2 in 4096)."""
    with running_server(multi_model) as url, httpx.Client(base_url=url, timeout=60) as client:
        answers = [verify(client, photos[POWELL[0]], photos[POWELL[1]]).json() for _ in range(12)]
    assert all(answer["same"] is True for answer in answers)
    assert len({round(answer["probability"], 9) for answer in answers}) == 2
    assert "multi-backbone" in answers[0]["model"]


PARENT = """
import sys, time
from facebone.service.process import server_process
with server_process(sys.argv[1]) as server:
    print(server.process.pid, flush=True)
    time.sleep(600)
"""


def test_a_killed_parent_takes_serve_and_its_workers_with_it(multi_model):
    """`bench --serve` killed with -9: its `serve` child, and that child's dlib workers, end."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(multi_model)], stdout=subprocess.PIPE, text=True
    )
    serve = int(parent.stdout.readline())
    workers = [
        int(pid)
        for children in Path(f"/proc/{serve}/task").glob("*/children")
        for pid in children.read_text().split()
    ]
    assert workers and is_alive(serve)  # dlib's workers start before the server says it is ready
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 30
    while any(is_alive(pid) for pid in (serve, *workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in (serve, *workers) if is_alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "serve or its workers outlived the parent"


@pytest.mark.slow
def test_bench_serve_is_bounded_and_every_request_succeeds(sface_model, lfw_root, capsys):
    from facebone.data.lfw import scan_lfw
    from facebone.service.bench import bench_serve

    paths = [image.path for image in scan_lfw(lfw_root)]
    measured = bench_serve(sface_model, lfw_root, paths, requests=6, clients=3)
    latency, load = measured["latency"], measured["throughput"]
    assert latency["requests"] == 6 and load["requests"] == 6 and load["clients"] == 3
    assert latency["failed"] == 0 and load["failed"] == 0
    assert 0 < latency["server_median_ms"] <= latency["median_ms"] <= latency["p95_ms"]
    assert load["requests_per_s"] > 0 and "sface" in measured["model"]
    assert main(["bench", "--data", str(lfw_root), "--serve"]) == 2
    assert "--serve needs --model" in capsys.readouterr().err


def test_serve_refuses_a_short_api_key(capsys, sface_model, tmp_path):
    (tmp_path / "key").write_text("short\n")
    argv = ["serve", "--model", str(sface_model), "--api-key-file", str(tmp_path / "key")]
    assert main(argv) == 2
    assert "shorter than 16 characters" in capsys.readouterr().err
