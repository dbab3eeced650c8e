"""The embedding cache: keyed by content, atomic, and a second run does no model work."""

import os
import shutil

import numpy as np

from facebone.atomic import write_text_atomic
from facebone.embeddings import EmbeddingCache, embed_images

PEOPLE = ["Colin_Powell", "Tony_Blair"]


class CountingBackbone:
    """Wraps a real backbone and counts the faces it embeds."""

    def __init__(self, inner):
        self.inner = inner
        self.embedded = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed(self, faces):
        self.embedded += len(faces)
        return self.inner.embed(faces)


def _small_dataset(lfw_root, tmp_path):
    for person in PEOPLE:
        target = tmp_path / "data" / person
        target.mkdir(parents=True)
        for file in sorted((lfw_root / person).iterdir())[:3]:
            shutil.copy(file, target / file.name)
    root = tmp_path / "data"
    return root, sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))


def test_second_run_comes_from_cache(lfw_root, tmp_path, backbone_pool):
    root, paths = _small_dataset(lfw_root, tmp_path)
    cache = EmbeddingCache(tmp_path / "cache")
    backbone = CountingBackbone(backbone_pool("sface"))
    first, report1 = embed_images(root, paths, [backbone], cache, progress=False)
    assert report1.n_computed == len(paths) and backbone.embedded == len(paths)
    second, report2 = embed_images(root, paths, [backbone], cache, progress=False)
    assert report2.n_cached == len(paths) and report2.n_computed == 0
    assert backbone.embedded == len(paths)
    np.testing.assert_array_equal(first["sface"], second["sface"])
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_cache_is_keyed_by_content_not_by_name(lfw_root, tmp_path, backbone_pool):
    root, paths = _small_dataset(lfw_root, tmp_path)
    cache = EmbeddingCache(tmp_path / "cache")
    backbone = CountingBackbone(backbone_pool("sface"))
    embed_images(root, paths, [backbone], cache, progress=False)
    renamed = root / "Someone_Else"
    renamed.mkdir()
    shutil.copy(root / paths[0], renamed / "Someone_Else_0001.jpg")
    _, report = embed_images(
        root, ["Someone_Else/Someone_Else_0001.jpg"], [backbone], cache, progress=False
    )
    assert report.n_cached == 1


def test_damaged_cache_entry_is_recomputed(lfw_root, tmp_path, backbone_pool):
    root, paths = _small_dataset(lfw_root, tmp_path)
    cache = EmbeddingCache(tmp_path / "cache")
    backbone = backbone_pool("sface")
    expected, _ = embed_images(root, paths[:1], [backbone], cache, progress=False)
    entry = next((tmp_path / "cache").rglob("*.npy"))
    entry.write_bytes(b"garbage")
    again, report = embed_images(root, paths[:1], [backbone], cache, progress=False)
    assert report.n_computed == 1
    np.testing.assert_allclose(again["sface"], expected["sface"], atol=1e-6)


def test_backbones_get_separate_cache_entries(lfw_root, tmp_path, backbone_pool):
    root, paths = _small_dataset(lfw_root, tmp_path)
    cache = EmbeddingCache(tmp_path / "cache")
    embed_images(root, paths[:2], [backbone_pool("sface")], cache, progress=False)
    keys = {p.name for p in (tmp_path / "cache").iterdir()}
    assert len(keys) == 1 and next(iter(keys)).startswith("sface-")


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
