"""The gallery over HTTP (`facebone serve --gallery`), on real LFW photos: each route with its
scope, decisions and opaque ids only, and what a client without identify rights learns of who
is enrolled (nothing: every answer it can get is the same for enrolled and other people)."""

import base64
import secrets

import httpx
import pytest

from facebone.cli import main
from facebone.service.process import running_server
from web_images import BLAIR, BLAIR_OTHER, POWELL

ENROLLER = "enrol-client-key-000000"
IDENTIFIER = "identify-client-key-000"
VERIFIER = "verify-only-client-key0"
ADMIN = "admin-client-key-0000000"
CONTRAST = "second-identify-key-0000"
COUNTED = "counted-client-key-00000"
BUDGET = 4
BUSH = ("George_W_Bush/George_W_Bush_0031.jpg", "George_W_Bush/George_W_Bush_0033.jpg")
STRANGER = "Gerhard_Schroeder/Gerhard_Schroeder_0006.jpg"
POWELL_THIRD = "Colin_Powell/Colin_Powell_0015.jpg"
SHARON = "Ariel_Sharon/Ariel_Sharon_0011.jpg"


@pytest.fixture(scope="module")
def photos(lfw_root) -> dict[str, bytes]:
    paths = (*POWELL, BLAIR, BLAIR_OTHER, *BUSH, STRANGER, POWELL_THIRD, SHARON)
    return {path: (lfw_root / path).read_bytes() for path in paths}


@pytest.fixture(scope="module")
def service(demo_workdir, tmp_path_factory):
    """An empty gallery of the demo's SFace system, served with keys of each scope."""
    model, folder = demo_workdir / "defended", tmp_path_factory.mktemp("gallery")
    store = folder / "people.sqlite"
    assert main(["gallery", "create", "--store", str(store), "--model", str(model)]) == 0
    (folder / "keys").write_text(
        f"{ENROLLER} enrol\n{IDENTIFIER} identify\n{VERIFIER}\n{ADMIN} admin\n"
        f"{CONTRAST} identify\n{COUNTED} identify,verify\n"
    )
    args = ["--gallery", str(store), "--api-key-file", str(folder / "keys")]
    args += ["--query-budget", str(BUDGET)]
    with running_server(model, args) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def ask(client: httpx.Client, key: str, method: str, path: str, **kwargs) -> httpx.Response:
    return client.request(method, path, headers={"X-API-Key": key}, **kwargs)


def one(data: bytes) -> dict:
    return {"files": {"img": data}}


def assert_refused(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert f"lacks the scope '{scope}'" in response.json()["error"]


def test_enrol_identify_verify_and_delete_over_http(service, photos):
    several = [("img", photos[POWELL[0]]), ("img", photos[POWELL[1]])]
    created = ask(service, ENROLLER, "POST", "/subjects", files=several)
    assert created.status_code == 201, created.text
    powell = created.json()["subject"]
    as_json = {"img": [base64.b64encode(photos[BLAIR]).decode()]}
    blair = ask(service, ENROLLER, "POST", "/subjects", json=as_json).json()["subject"]
    assert len(powell) == len(blair) == 32 and powell != blair

    def identify(photo: str) -> dict:
        answer = ask(service, IDENTIFIER, "POST", "/identify", **one(photos[photo]))
        assert answer.status_code == 200, answer.text
        return answer.json()

    # A decision and an id: never a score.
    assert identify(POWELL_THIRD) == {"match": True, "subject": powell}
    assert identify(STRANGER) == {"match": False, "subject": None}

    def verify(subject: str, photo: str) -> httpx.Response:
        return ask(service, VERIFIER, "POST", f"/subjects/{subject}/verify", **one(photos[photo]))

    assert verify(powell, POWELL_THIRD).json() == {"same": True}
    assert verify(powell, BLAIR_OTHER).json() == {"same": False}

    added = ask(service, ENROLLER, "POST", f"/subjects/{blair}/faces", **one(photos[BLAIR_OTHER]))
    assert added.json() == {"subject": blair}
    listed = ask(service, ADMIN, "GET", "/subjects").json()["subjects"]
    faces = {row["subject"]: row["faces"] for row in listed}
    assert faces[powell] == 2 and faces[blair] == 2

    deleted = ask(service, ENROLLER, "DELETE", f"/subjects/{blair}")
    assert deleted.json() == {"subject": blair, "faces_deleted": 2}
    assert identify(BLAIR_OTHER) == {"match": False, "subject": None}
    # Callers with the scope learn that an id is unknown: 404.
    assert ask(service, ENROLLER, "DELETE", f"/subjects/{blair}").status_code == 404
    assert verify(blair, BLAIR_OTHER).json() == {"error": "no such subject"}


def test_each_gallery_route_needs_its_scope(service, photos):
    probe = one(photos[STRANGER])
    assert_refused(ask(service, VERIFIER, "POST", "/identify", **probe), "identify")
    assert_refused(ask(service, VERIFIER, "POST", "/subjects", **probe), "enrol")
    assert_refused(ask(service, IDENTIFIER, "GET", "/subjects"), "admin")
    assert_refused(ask(service, ADMIN, "DELETE", f"/subjects/{'0' * 32}"), "enrol")
    assert_refused(
        ask(service, ENROLLER, "POST", f"/subjects/{'0' * 32}/verify", **probe), "verify"
    )
    assert ask(service, VERIFIER, "POST", "/embed", **probe).status_code == 404  # not enabled
    assert ask(service, ENROLLER, "POST", "/subjects", json={"img": []}).status_code == 400


def test_identify_and_subject_verify_count_against_the_budget(service, photos):
    probe = one(photos[STRANGER])
    subject = ask(service, ENROLLER, "POST", "/subjects", **one(photos[SHARON])).json()["subject"]
    statuses = [
        ask(service, COUNTED, "POST", path, **probe).status_code
        for path in ("/identify", f"/subjects/{subject}/verify") * 3
    ]
    assert statuses == [200] * BUDGET + [429] * (6 - BUDGET)


def test_without_identify_rights_membership_is_invisible(service, photos):
    """Bush is enrolled, Schroeder is not. A client holding the verify scope (the default) and
    no subject id gets, for every route it can call, the same answer for either probe; a
    client with identify tells them apart at once."""
    subject = ask(service, ENROLLER, "POST", "/subjects", **one(photos[BUSH[0]])).json()["subject"]
    probes = {"enrolled": photos[BUSH[1]], "not enrolled": photos[STRANGER]}
    unknown = [secrets.token_hex(16) for _ in range(3)]
    routes = [
        ("POST", "/identify"),
        ("GET", "/subjects"),
        ("POST", "/subjects"),
        ("POST", "/embed"),
    ]
    for guess in unknown:
        routes += [("POST", f"/subjects/{guess}/verify"), ("POST", f"/subjects/{guess}/faces")]
        routes += [("DELETE", f"/subjects/{guess}")]

    def answers(probe: bytes) -> list[tuple[int, str]]:
        seen = []
        for method, path in routes:
            body = {} if method in ("GET", "DELETE") else one(probe)
            response = ask(service, VERIFIER, method, path, **body)
            seen.append((response.status_code, response.text))
        return seen

    seen = {name: answers(probe) for name, probe in probes.items()}
    assert seen["enrolled"] == seen["not enrolled"]
    assert {status for status, _ in seen["enrolled"]} == {403, 404}
    identified = {
        name: ask(service, CONTRAST, "POST", "/identify", **one(probe)).json()["subject"]
        for name, probe in probes.items()
    }
    assert identified == {"enrolled": subject, "not enrolled": None}
