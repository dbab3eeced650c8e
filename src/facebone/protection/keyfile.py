"""Key files: one or several named template-protection keys in an `.npz`, without pickle.

A file holds `format`, `entries` (the entry names: backbone names for a system, one per
backbone since their embeddings differ) and, for entry number i, `i.protection` (the registered
name) and `i.<array>` for each key array. It is written whole or not at all, private to its
owner, and never over an existing file unless asked: losing a key makes every template
enrolled with it useless.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from facebone.atomic import write_private
from facebone.errors import FaceBoneError
from facebone.protection.base import PROTECTIONS, TemplateProtection

KEY_FORMAT = 1


def save_keys(
    path: str | Path, keys: Mapping[str, TemplateProtection], overwrite: bool = False
) -> None:
    """Write `keys` (entry name -> keyed protection) to `path`."""
    path = Path(path)
    if not keys:
        raise FaceBoneError("no keys to save")
    arrays = {"format": np.array(KEY_FORMAT), "entries": np.array(list(keys))}
    for i, protection in enumerate(keys.values()):
        protection.fingerprint()  # draws the key if it has none yet
        arrays[f"{i}.protection"] = np.array(protection.name)
        arrays.update({f"{i}.{name}": array for name, array in protection.key_.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_private(path, buffer.getvalue(), overwrite)


def load_keys(path: str | Path) -> dict[str, TemplateProtection]:
    """Entry name -> keyed protection; a missing or damaged file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise FaceBoneError(f"key file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise FaceBoneError(f"key file {path} is not a FaceBone key file (not an npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise FaceBoneError(f"key file {path} is damaged ({error})") from None
    if "format" not in arrays or "entries" not in arrays or arrays["format"].shape != ():
        raise FaceBoneError(f"key file {path} is not a FaceBone template-protection key file")
    if arrays["format"].item() != KEY_FORMAT:
        raise FaceBoneError(
            f"key file {path} has format {arrays['format'].item()}; "
            f"this FaceBone reads format {KEY_FORMAT}"
        )
    keys = {}
    try:
        for i, entry in enumerate(arrays["entries"].tolist()):
            cls = PROTECTIONS.get(str(arrays[f"{i}.protection"].item()))
            prefix = f"{i}."
            key = {
                name[len(prefix) :]: array
                for name, array in arrays.items()
                if name.startswith(prefix) and name != f"{i}.protection"
            }
            keys[str(entry)] = cls.from_key(key)
    except (KeyError, ValueError, TypeError, AttributeError, FaceBoneError) as error:
        raise FaceBoneError(f"key file {path} is damaged ({error})") from None
    if not keys:
        raise FaceBoneError(f"key file {path} holds no key")
    return keys


def load_key(path: str | Path) -> TemplateProtection:
    """The one keyed protection a key file holds."""
    keys = load_keys(path)
    if len(keys) != 1:
        raise FaceBoneError(
            f"key file {path} holds {len(keys)} keys ({', '.join(keys)}), not one; use load_keys"
        )
    return next(iter(keys.values()))


def keys_fingerprint(keys: Mapping[str, TemplateProtection]) -> str:
    """SHA-256 over the entries' names and key fingerprints: what a model directory records to
    tell the right key file from another, without holding the key."""
    text = "".join(f"{entry}={keys[entry].fingerprint()}\n" for entry in sorted(keys))
    return hashlib.sha256(text.encode()).hexdigest()
