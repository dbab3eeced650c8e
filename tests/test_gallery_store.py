"""The storage contract of a gallery (`GalleryStore`), the same tests for every backend.

`store_location` gives a fresh location per test, one parameter per backend; the test bodies
know nothing of the backend. Templates are real SFace embeddings of LFW faces.
"""

import time

import numpy as np
import pytest

from facebone.errors import FaceBoneError
from facebone.gallery.records import GalleryMeta, Subject
from facebone.gallery.store import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path) -> str:
    """A location where no gallery exists yet: a file path, or an empty database on the test
    session's PostgreSQL server."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "gallery.sqlite")


@pytest.fixture(scope="module")
def faces(lfw_embeddings) -> np.ndarray:
    table = lfw_embeddings("sface")
    return np.stack([table[path] for path in sorted(table)[:12]]).astype(np.float32)


def _meta(protection=None, dim=128) -> GalleryMeta:
    return GalleryMeta(protection, {"sface": dim}, None, "0" * 64, created=time.time())


@pytest.fixture
def store(store_location):
    made = open_store(store_location, create=True, meta=_meta())
    yield made
    made.close()


def test_meta_survives_reopening_and_an_existing_store_is_never_recreated(store_location):
    meta = _meta("ckks")
    open_store(store_location, create=True, meta=meta).close()
    with open_store(store_location) as reopened:
        assert reopened.meta == meta
    with pytest.raises(FaceBoneError, match="exists"):
        open_store(store_location, create=True, meta=_meta())
    with open_store(store_location) as again:
        assert again.meta == meta


def test_templates_round_trip_and_nearest_is_by_cosine(store, faces):
    with store.transaction():
        subjects = [store.new_subject() for _ in range(len(faces))]
        ids = [store.add_face(s, f"photo-{i}") for i, s in enumerate(subjects)]
        for face, vector in zip(ids, faces, strict=True):
            store.put_vector(face, "sface", vector)
    assert len(set(subjects)) == len(subjects) and all(len(s) == 32 for s in subjects)
    got_ids, got_subjects, matrix = store.vectors("sface")
    assert got_ids.tolist() == ids and got_subjects == subjects
    np.testing.assert_array_equal(matrix, faces)  # bit for bit
    units = faces / np.linalg.norm(faces, axis=1, keepdims=True)
    cosines = units @ units[3]
    nearest = store.nearest("sface", faces[3], 4)
    assert [face for face, _, _ in nearest] == [ids[i] for i in np.argsort(-cosines)[:4]]
    assert nearest[0][1] == subjects[3]
    np.testing.assert_allclose([c for *_, c in nearest], np.sort(cosines)[::-1][:4], atol=1e-5)
    with pytest.raises(FaceBoneError):
        store.put_vector(ids[0], "sface", faces[0][:64])  # a template of the wrong width


def test_a_face_is_added_once_per_subject_and_photo(store, faces):
    with store.transaction():
        first, second = store.new_subject(), store.new_subject()
        face = store.add_face(first, "photo")
        assert store.add_face(first, "photo") is None
        assert store.add_face(second, "photo") not in (None, face)  # another person's copy
    assert [(s.id, s.faces) for s in store.subjects()] == [(first, 1), (second, 1)]
    with pytest.raises(FaceBoneError):
        store.add_face("0" * 32, "photo")  # no such subject


def test_a_failed_transaction_writes_nothing(store, faces):
    with store.transaction():
        kept = store.new_subject()
        store.put_vector(store.add_face(kept, "a"), "sface", faces[0])
    with pytest.raises(RuntimeError), store.transaction():
        lost = store.new_subject()
        store.put_vector(store.add_face(lost, "b"), "sface", faces[1])
        raise RuntimeError("killed mid-enrolment")
    assert store.has_subject(kept) and not store.has_subject(lost)
    assert [s.id for s in store.subjects()] == [kept]
    assert store.vectors("sface")[0].size == 1


def test_deleting_a_subject_removes_its_faces_vectors_and_slots(store, faces):
    with store.transaction():
        people = [store.new_subject() for _ in range(3)]
        for n, subject in enumerate(people):
            for i in range(n + 1):
                face = store.add_face(subject, f"{n}-{i}")
                store.put_vector(face, "sface", faces[n * 3 + i])
                store.put_slot(face, "sface", 0, n * 3 + i)
        store.put_block("sface", 0, [bytes([j]) * 10 for j in range(128)])
    assert [s.faces for s in store.subjects()] == [1, 2, 3]
    assert isinstance(store.subjects()[0], Subject)
    gone = store.delete_subject(people[1])
    assert len(gone) == 2
    assert not store.has_subject(people[1]) and store.has_subject(people[2])
    ids, subjects, _ = store.vectors("sface")
    assert people[1] not in subjects and not set(gone) & set(ids.tolist())
    assert [row[1] for row in store.slots("sface")] == [people[0]] + [people[2]] * 3
    assert store.blocks("sface")[0][5] == bytes([5]) * 10  # blocks belong to no subject
    with pytest.raises(FaceBoneError, match="no subject"):
        store.delete_subject(people[1])


def test_blocks_are_replaced_whole(store):
    store.put_block("sface", 0, [b"old"] * 128)
    store.put_block("sface", 1, [b"one"] * 128)
    store.put_block("sface", 0, [bytes([j]) for j in range(128)])
    blocks = store.blocks("sface")
    assert sorted(blocks) == [0, 1] and blocks[0][7] == bytes([7]) and blocks[1] == [b"one"] * 128
    with pytest.raises(FaceBoneError):
        store.put_block("sface", 2, [b"x"] * 3)  # one ciphertext per coordinate


def test_every_committed_write_transaction_moves_the_generation_for_every_connection(
    store, store_location, faces
):
    assert store.generation() == 0
    with open_store(store_location) as other:
        with store.transaction():
            subject = store.new_subject()
            with store.transaction():  # a nested transaction joins the outer one
                store.put_vector(store.add_face(subject, "a"), "sface", faces[0])
            assert store.generation() == 1  # this connection sees its own transaction
        assert other.generation() == 1
        other.new_subject()  # a single write is a transaction of its own
        assert store.generation() == other.generation() == 2
        with pytest.raises(RuntimeError), other.transaction():
            other.new_subject()
            raise RuntimeError("rolled back")
        assert store.generation() == 2  # a transaction rolled back moves nothing
        store.delete_subject(subject)
        assert other.generation() == 3
