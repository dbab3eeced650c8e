"""The gallery store on PostgreSQL + pgvector, against a real server (the `pgserver` wheel) and
real LFW embeddings: the storage contract, and what only a server brings (URLs, connection
failures, the pgvector extension, a database shared with the user's own tables)."""

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
def people(lfw_embeddings):
    """{person: [(photo, sface embedding)]} for the first 60 LFW people with >= 2 faces."""
    by_person: dict[str, list] = {}
    for path, embedding in sorted(lfw_embeddings("sface").items()):
        if np.isfinite(embedding).all():
            by_person.setdefault(Path(path).parent.name, []).append((path, embedding))
    return dict(list({p: faces for p, faces in by_person.items() if len(faces) >= 2}.items())[:60])


def enroll(store, faces) -> tuple[str, list[int]]:
    with store.transaction():
        subject = store.new_subject()
        ids = []
        for photo, embedding in faces:
            face = store.add_face(subject, photo)
            store.put_vector(face, "sface", embedding)
            ids.append(face)
    return subject, ids


def test_meta_round_trips_and_a_second_connection_sees_the_committed_gallery(store, postgres_url):
    subject, _ = enroll(store, [("a.jpg", np.ones(128, np.float32))])
    with open_store(postgres_url) as reopened:
        assert reopened.meta == META
        assert reopened.has_subject(subject)
        assert [(s.id, s.faces) for s in reopened.subjects()] == [(subject, 1)]


def test_an_enrolment_that_fails_leaves_nothing_and_is_invisible_until_committed(
    store, postgres_url, people
):
    (photo, embedding), *_ = next(iter(people.values()))
    with open_store(postgres_url) as other, pytest.raises(RuntimeError), store.transaction():
        subject = store.new_subject()
        store.put_vector(store.add_face(subject, photo), "sface", embedding)
        assert store.has_subject(subject)
        assert not other.has_subject(subject)
        raise RuntimeError("killed mid-enrolment")
    assert store.subjects() == []
    assert len(store.vectors("sface")[0]) == 0


def test_a_repeated_photo_adds_nothing_twice(store):
    with store.transaction():
        first, second = store.new_subject(), store.new_subject()
        face = store.add_face(first, "digest")
        assert store.add_face(first, "digest") is None
        assert store.add_face(second, "digest") not in (None, face)
    assert {s.id: s.faces for s in store.subjects()} == {first: 1, second: 1}
    with pytest.raises(FaceBoneError, match="no subject"):
        store.add_face("f" * 32, "other")


def test_vectors_round_trip_exactly_and_nearest_ranks_as_numpy_does(store, people):
    enrolled = {person: enroll(store, faces[:1]) for person, faces in people.items()}
    faces, subjects, matrix = store.vectors("sface")
    expected = np.stack([faces_[0][1] for faces_ in people.values()]).astype(np.float32)
    order = np.argsort(faces)
    np.testing.assert_array_equal(matrix[order], expected)
    assert [subjects[i] for i in order] == [subject for subject, _ in enrolled.values()]
    assert matrix.dtype == np.float32 and faces.dtype == np.int64
    assert store.vectors("dlib")[2].shape == (0, 128)

    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    for photos in list(people.values())[:10]:
        probe = photos[1][1]
        cosines = unit @ (probe / np.linalg.norm(probe))
        best = np.argsort(-cosines, kind="stable")[:5]
        found = store.nearest("sface", probe, 5)
        assert [face for face, _, _ in found] == faces[best].tolist()
        np.testing.assert_allclose([c for _, _, c in found], cosines[best], atol=1e-5)
    assert len(store.nearest("sface", probe, 10_000)) == len(people)


def test_templates_of_the_wrong_width_or_backbone_are_refused(store):
    _, (face,) = enroll(store, [("a.jpg", np.ones(128, np.float32))])
    with pytest.raises(FaceBoneError, match="128 finite numbers"):
        store.put_vector(face, "sface", np.ones(127, np.float32))
    with pytest.raises(FaceBoneError, match="128 finite numbers"):
        store.nearest("sface", np.full(128, np.nan, np.float32), 1)
    with pytest.raises(FaceBoneError, match="no backbone 'arcface'"):
        store.put_vector(face, "arcface", np.ones(128, np.float32))


def test_blocks_are_replaced_whole_and_slots_name_their_subjects(store):
    with store.transaction():
        subject = store.new_subject()
        faces = [store.add_face(subject, f"photo{i}") for i in range(3)]
        store.put_block("sface", 0, [b"old" * 10] * 128)
        store.put_block("sface", 0, [bytes([i]) * 1000 for i in range(128)])
        store.put_block("sface", 1, [b"\x00second"] * 128)
        for slot, face in enumerate(faces):
            store.put_slot(face, "sface", 0, slot)
        store.put_slot(faces[0], "dlib", 4, 7)
    blocks = store.blocks("sface")
    assert sorted(blocks) == [0, 1]
    assert blocks[0] == [bytes([i]) * 1000 for i in range(128)]
    assert blocks[1] == [b"\x00second"] * 128
    assert store.blocks("dlib") == {}
    assert store.slots("sface") == [(face, subject, 0, slot) for slot, face in enumerate(faces)]
    assert store.slots("dlib") == [(faces[0], subject, 4, 7)]


def test_deleting_a_subject_removes_its_faces_templates_and_slots_only(store, people):
    (kept, _), (gone, gone_faces) = (enroll(store, faces) for faces in list(people.values())[:2])
    with store.transaction():
        store.put_slot(gone_faces[0], "sface", 0, 0)
        assert store.delete_subject(gone) == sorted(gone_faces)
    assert not store.has_subject(gone) and store.has_subject(kept)
    assert set(store.vectors("sface")[1]) == {kept}
    assert store.slots("sface") == []
    with pytest.raises(FaceBoneError, match="no subject"):
        store.delete_subject(gone)


def test_a_database_without_a_gallery_or_with_one_already_is_refused(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as user:
        user.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(FaceBoneError, match="holds no FaceBone gallery"):
        open_store(postgres_url)
    with open_store(postgres_url, create=True, meta=META) as store:
        subject = store.new_subject()
    with pytest.raises(FaceBoneError, match="already holds a FaceBone gallery"):
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
        user.execute(f"DROP TABLE {PREFIX}slots")
    with pytest.raises(FaceBoneError, match="damaged \\(missing facebone_gallery_slots\\)"):
        open_store(postgres_url)


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
