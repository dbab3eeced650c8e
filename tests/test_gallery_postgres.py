"""The gallery store on PostgreSQL + pgvector, against a real server (the `pgserver` wheel) and
real LFW embeddings: what only a server brings (ranking on the server, URLs, connection failures,
the pgvector extension, a database shared with the user's own tables). The storage contract
itself is tested on both backends in test_gallery_store.py."""

import secrets
from pathlib import Path

import numpy as np
import psycopg
import pytest

from facebone.errors import FaceBoneError
from facebone.gallery.postgres_store import PREFIX, PostgresStore, describe
from facebone.gallery.records import GalleryMeta
from facebone.gallery.store import open_store

META = GalleryMeta(
    protection=None,
    backbones={"sface": 128, "dlib": 128},
    key_fingerprint="ab12",
    model_sha256="0" * 64,
    created=1_700_000_000.5,
)


@pytest.fixture
def store(postgres_url):
    with open_store(postgres_url, create=True, meta=META) as created:
        yield created


@pytest.fixture(scope="module")
def first_and_second_faces(lfw_embeddings) -> tuple[np.ndarray, np.ndarray]:
    """SFace embeddings of the first and second photo of the first 60 LFW people with >= 2."""
    by_person: dict[str, list] = {}
    for path, embedding in sorted(lfw_embeddings("sface").items()):
        by_person.setdefault(Path(path).parent.name, []).append(embedding)
    pairs = [faces[:2] for faces in by_person.values() if len(faces) >= 2][:60]
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


def test_the_server_ranks_by_cosine_as_numpy_does(store, first_and_second_faces):
    enrolled, probes = first_and_second_faces
    with store.transaction():
        for n, template in enumerate(enrolled):
            store.put_vector(store.add_face(store.new_subject(), f"photo-{n}"), "sface", template)
    faces, _, _ = store.vectors("sface")
    units = enrolled / np.linalg.norm(enrolled, axis=1, keepdims=True)
    for probe in probes:
        cosines = units @ (probe / np.linalg.norm(probe))
        best = np.argsort(-cosines, kind="stable")[:5]
        found = store.nearest("sface", probe, 5)
        assert [face for face, _, _ in found] == faces[best].tolist()
        np.testing.assert_allclose([c for *_, c in found], cosines[best], atol=1e-5)
    assert len(store.nearest("sface", probes[0], 10_000)) == len(enrolled)
    with pytest.raises(FaceBoneError, match="128 finite numbers"):
        store.nearest("sface", np.full(128, np.nan, np.float32), 1)


def test_a_database_without_a_gallery_or_with_one_already_is_refused(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as user:
        user.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(FaceBoneError, match="holds no FaceBone gallery"):
        open_store(postgres_url)
    with open_store(postgres_url, create=True, meta=META) as store:
        subject = store.new_subject()
    with pytest.raises(FaceBoneError, match="already exists"):
        open_store(postgres_url, create=True, meta=META)
    with open_store(postgres_url) as store:
        assert store.has_subject(subject)
    with psycopg.connect(postgres_url, autocommit=True) as user:
        tables = {
            row[0]
            for row in user.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert tables == {"people"} | {
            PREFIX + t for t in ("meta", "subjects", "faces", "vectors", "blocks", "slots")
        }
        assert user.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        user.execute(f"UPDATE {PREFIX}meta SET meta = '{{}}'")
    with pytest.raises(FaceBoneError, match="metadata is damaged"):
        open_store(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as user:
        user.execute(f"DROP TABLE {PREFIX}slots")
    with pytest.raises(FaceBoneError, match="damaged \\(missing facebone_gallery_slots\\)"):
        open_store(postgres_url)


def test_a_user_who_may_not_enable_pgvector_is_told_what_the_server_needs(postgres_url):
    role = f"plain_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    url = postgres_url.replace("postgres:@", f"{role}:s3cret@")
    try:
        with pytest.raises(FaceBoneError, match="needs the pgvector extension") as caught:
            open_store(url, create=True, meta=META)
        assert 'permission denied to create extension "vector"' in str(caught.value)
        assert "s3cret" not in str(caught.value)
        with pytest.raises(FaceBoneError, match="holds no FaceBone gallery"):
            open_store(url)  # the failed creation left nothing behind
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "postgresql://alice:s3cret@127.0.0.1:1/db",
            "cannot connect to postgresql://alice@127.0.0.1:1/db",
        ),
        ("postgresql://alice:s3cret@[::1/db", "not valid"),
        ("postgresql://alice:s3cret@/db?sslmode=sometimes", "invalid sslmode value"),
        ("host=/x password=s3cret port=nan", "not valid|cannot connect"),
    ],
)
def test_connection_failures_are_one_sentence_without_the_password(url, message):
    with pytest.raises(FaceBoneError, match=message) as caught:
        PostgresStore.open(url)
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_role_or_database_on_a_running_server_is_one_sentence(postgres_server):
    socket = postgres_server.get_uri().split("host=")[1]
    for url, reason in (
        (f"postgresql://mallory:s3cret@/postgres?host={socket}", 'role "mallory" does not exist'),
        (
            f"postgresql://postgres:s3cret@/nowhere?host={socket}",
            'database "nowhere" does not exist',
        ),
    ):
        with pytest.raises(FaceBoneError, match=reason) as caught:
            PostgresStore.open(url)
        assert "s3cret" not in str(caught.value)
        assert describe(url).startswith("postgresql://") and "s3cret" not in describe(url)
