"""A trained system on disk: `config.json` + `predictor.safetensors` (+ `suppression.safetensors`
with attribute suppression), loaded without pickle.

The directory is written beside its destination and swapped in whole, so a failed save
never leaves a mix of old and new files, and never destroys the model that was there. Only
FaceBone's own files are ever replaced: a folder that also holds the user's files is refused,
or with `force` gets the two model files replaced in place and the rest left alone.
`config.json` holds the SHA-256 of the weights, so weights swapped in from another model of the
same shape are refused on load instead of answering differently. A system with template
protection records only the fingerprint of its keys: the keys stay in the user's key file, so a
copied model directory does not give them away, and loading needs that file. A system with
attribute suppression keeps its directions (no secret: they are fitted on public faces) in
`suppression.safetensors`, their state and the SHA-256 of the file and of the public pairs in
`config.json`.
"""

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

import facebone
from facebone.atomic import new_mode, write_bytes_atomic, write_text_atomic
from facebone.data.text_files import parse_json
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.predictors import predictor_from_state
from facebone.protection import TemplateProtection, keys_fingerprint
from facebone.protection.attribute_suppression import AttributeSuppression
from facebone.system.fr_system import FRSystem

FORMAT = 1
CONFIG = "config.json"
WEIGHTS = "predictor.safetensors"
SUPPRESSION = "suppression.safetensors"
MODEL_FILES = (CONFIG, WEIGHTS, SUPPRESSION)


def save_system(
    system: FRSystem, directory: str | Path, extra: dict | None = None, force: bool = False
) -> None:
    """Write `system` to `directory`; see the module docstring for what is replaced."""
    system.check_fitted()
    # Absolute and normalised, so `.` or `..` name the folder they stand for.
    directory = Path(os.path.abspath(directory))
    predictor_config, tensors = system.predictor_.get_state()
    weights = save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
    config = {
        "format": FORMAT,
        "facebone_version": facebone.__version__,
        "system": system.get_params(),
        "backbones": [
            {
                "spec": spec,
                "name": b.name,
                "embedding_dim": b.embedding_dim,
                "cache_key": b.cache_key,
            }
            for spec, b in zip(system.backbones, system.embedder_.backbones, strict=True)
        ],
        "embedding_dim": system.embedding_dim_,
        "threshold": 0.5,
        "predictor": predictor_config,
        "predictor_sha256": hashlib.sha256(weights).hexdigest(),
        "training_pairs_sha256": system.training_pairs_sha256_,
        "n_training_pairs": system.n_training_pairs_,
        # What a public calibration or an attribute suppression was fitted on (None: neither).
        "public_pairs_sha256": system.public_pairs_sha256_,
        **(extra or {}),
    }
    if system.protections_:
        config["key_fingerprint"] = keys_fingerprint(system.protections_)
    files = {WEIGHTS: weights}
    if system.suppressions_:
        states = {name: s.get_state() for name, s in system.suppressions_.items()}
        files[SUPPRESSION] = save(
            {f"{name}.{k}": v for name, (_, arrays) in states.items() for k, v in arrays.items()}
        )
        config["suppression"] = {
            "backbones": {name: state for name, (state, _) in states.items()},
            "sha256": hashlib.sha256(files[SUPPRESSION]).hexdigest(),
            "public_pairs_sha256": system.public_pairs_sha256_,
        }
    text = json.dumps(config, indent=2, sort_keys=True)
    others = foreign_entries(directory)
    if others and not force:
        raise FaceBoneError(
            f"{directory} holds files FaceBone did not write ({', '.join(others[:3])}); "
            "not overwriting it"
        )
    if others:
        # Weights first: a crash in between leaves a hash mismatch, refused on load.
        for name, data in files.items():
            write_bytes_atomic(directory / name, data)
        write_text_atomic(directory / CONFIG, text)
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        # mkdtemp makes the folder private; keep a replaced model's mode, else the umask's.
        mode = stat.S_IMODE(directory.stat().st_mode) if directory.is_dir() else None
        os.chmod(staging, mode if mode is not None else new_mode(directory=True))
        for name, data in files.items():
            (staging / name).write_bytes(data)
        (staging / CONFIG).write_text(text)
        _swap_in(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def foreign_entries(directory: str | Path) -> list[str]:
    """Names in `directory` that FaceBone did not write; a path that cannot become a model
    directory (a file, a folder with someone else's `config.json`) is an error."""
    directory = Path(directory)
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise FaceBoneError(f"{directory} is a file, not a model directory; not overwriting it")
    names = sorted(entry.name for entry in directory.iterdir())
    if CONFIG in names:
        try:
            read_config(directory)
        except FaceBoneError:
            raise FaceBoneError(
                f"{directory} is not a FaceBone model (its {CONFIG} is not one); not overwriting it"
            ) from None
    return [name for name in names if name not in MODEL_FILES]


def _swap_in(staging: Path, directory: Path) -> None:
    """Replace `directory`, which holds at most the model files, by `staging` in two renames.

    The old model is moved aside to a name made unique here (an empty folder from `mkdtemp`,
    which a rename may replace), never to a fixed name that could hold the user's files.
    """
    if not directory.exists():
        staging.rename(directory)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
    try:
        directory.rename(old)
    except OSError:
        old.rmdir()
        raise
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


# The sections of config.json that readers look into: (name, JSON type, required). A
# hand-edited file with `"system": null` is refused here, not as a traceback in a reader.
SECTIONS = (
    ("system", dict, True),
    ("predictor", dict, True),
    ("backbones", list, True),
    ("dp", dict, False),
    ("suppression", dict, False),
)


def read_config(directory: str | Path) -> dict:
    directory = Path(directory)
    if directory.is_file():
        raise FaceBoneError(f"model directory {directory} is a file, not a folder")
    if not directory.is_dir():
        raise FaceBoneError(f"model directory {directory} does not exist")
    try:
        config = parse_json((directory / CONFIG).read_text())
    except FileNotFoundError:
        raise FaceBoneError(
            f"{directory} is not a FaceBone model directory (no {CONFIG})"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FaceBoneError(f"{directory / CONFIG} is damaged ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise FaceBoneError(f"{directory / CONFIG}: not a FaceBone model of format {FORMAT}")
    for section, kind, required in SECTIONS:
        if (required or config.get(section) is not None) and not isinstance(
            config.get(section), kind
        ):
            what = "an object" if kind is dict else "a list"
            raise FaceBoneError(f"{directory / CONFIG}: {section} must be {what}")
    return config


def load_system(
    directory: str | Path,
    cache: EmbeddingCache | None,
    progress: bool = True,
    keys: Mapping[str, TemplateProtection] | None = None,
) -> FRSystem:
    """Rebuild a trained system; its backbones must be the ones it was trained with, and a
    system with template protection needs the `keys` it was trained with."""
    directory = Path(directory)
    config = read_config(directory)
    try:
        weights = (directory / WEIGHTS).read_bytes()
        tensors = load(weights)
    except FileNotFoundError:
        raise FaceBoneError(f"{directory} has no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise FaceBoneError(f"{directory / WEIGHTS} is damaged ({error})") from None
    if "predictor_sha256" not in config:
        raise FaceBoneError(
            f"{directory / CONFIG} holds no weights hash (saved by an older FaceBone); retrain it"
        )
    if config["predictor_sha256"] != hashlib.sha256(weights).hexdigest():
        raise FaceBoneError(
            f"{directory / WEIGHTS} is not the one this model saved (its SHA-256 differs from "
            f"the one in {CONFIG}); retrain the model or restore its weights"
        )
    try:
        if not isinstance(config["system"].get("backbones"), list):
            raise TypeError("system.backbones is not a list")
        system = FRSystem(**config["system"])
        stored_backbones = [dict(stored) for stored in config["backbones"]]
        predictor = predictor_from_state(config["predictor"], tensors)
        embedding_dim = int(config["embedding_dim"])
        training = (str(config["training_pairs_sha256"]), int(config["n_training_pairs"]))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise FaceBoneError(f"{directory / CONFIG} is incomplete ({error})") from None
    try:
        # A hand-edited file: every option as training would have checked it.
        system._check_options()
    except FaceBoneError as error:
        raise FaceBoneError(f"{directory / CONFIG}: {error}") from None
    embedder = Embedder(system.backbones, cache, progress)
    if len(stored_backbones) != len(embedder.backbones):
        raise FaceBoneError(f"{directory / CONFIG}: its backbones and system.backbones differ")
    for stored, backbone in zip(stored_backbones, embedder.backbones, strict=True):
        if stored.get("cache_key") != backbone.cache_key:
            raise FaceBoneError(
                f"backbone {backbone.name} differs from the one this model was trained with "
                f"({stored.get('cache_key')} vs {backbone.cache_key})"
            )
    system.embedder_ = embedder
    system.suppressions_ = _suppressions(system, directory, config)
    system.public_pairs_sha256_ = recorded_public_sha256(config)
    system.protections_ = _checked_keys(system, directory, config, keys)
    widest = max(system._template_dim(b.name, b.embedding_dim) for b in embedder.backbones)
    if embedding_dim != widest or predictor.n_features_in_ != widest:
        raise FaceBoneError(
            f"{directory / CONFIG}: embedding_dim {embedding_dim} and the predictor's "
            f"{predictor.n_features_in_} inputs must both be {widest}, its backbones' width"
        )
    system.embedding_dim_ = embedding_dim
    system.predictor_ = predictor
    system.training_pairs_sha256_, system.n_training_pairs_ = training
    system.reset_query_stream()
    return system


def recorded_public_sha256(config: dict) -> str | None:
    """The SHA-256 of the public pairs a model's calibration or attribute suppression was
    fitted on; models saved before it was kept at the top level kept it only with the
    suppression."""
    return config.get("public_pairs_sha256") or (config.get("suppression") or {}).get(
        "public_pairs_sha256"
    )


def _suppressions(
    system: FRSystem, directory: Path, config: dict
) -> dict[str, AttributeSuppression]:
    """Backbone name -> the attribute suppression saved with the model (none without)."""
    if system.attribute_suppression is None:
        return {}
    stored = config.get("suppression")
    if not isinstance(stored, dict):
        raise FaceBoneError(f"{directory / CONFIG} has attribute suppression but no state for it")
    try:
        data = (directory / SUPPRESSION).read_bytes()
        arrays = load(data)
    except FileNotFoundError:
        raise FaceBoneError(f"{directory} has no {SUPPRESSION}") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise FaceBoneError(f"{directory / SUPPRESSION} is damaged ({error})") from None
    if stored.get("sha256") != hashlib.sha256(data).hexdigest():
        raise FaceBoneError(
            f"{directory / SUPPRESSION} is not the one this model saved (its SHA-256 differs "
            f"from the one in {CONFIG})"
        )
    states = stored.get("backbones")
    dims = {b.name: b.embedding_dim for b in system.embedder_.backbones}
    if not isinstance(states, dict) or sorted(states) != sorted(dims):
        raise FaceBoneError(f"{directory / CONFIG}: attribute suppression for other backbones")
    suppressions = {}
    for name, state in states.items():
        prefix = f"{name}."
        own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        try:
            suppression = AttributeSuppression.from_state(state, own)
        except FaceBoneError as error:
            raise FaceBoneError(f"{directory / SUPPRESSION}: {error}") from None
        if suppression.n_features_in_ != dims[name]:
            raise FaceBoneError(
                f"{directory}: the attribute suppression of {name} is for "
                f"{suppression.n_features_in_}-D embeddings, not {dims[name]}-D"
            )
        suppressions[name] = suppression
    return suppressions


def _checked_keys(
    system: FRSystem,
    directory: Path,
    config: dict,
    keys: Mapping[str, TemplateProtection] | None,
) -> dict[str, TemplateProtection]:
    if system.template_protection is None:
        if keys:
            raise FaceBoneError(f"keys were given but {directory} uses no template protection")
        return {}
    if not keys:
        raise FaceBoneError(
            f"{directory} uses template protection {system.template_protection!r}; "
            "loading it needs its keys"
        )
    if keys_fingerprint(keys) != config.get("key_fingerprint"):
        raise FaceBoneError(
            f"the keys given are not the ones {directory} was trained with "
            "(their fingerprint differs)"
        )
    return system._checked_keys(keys)
