"""A trained system on disk: `config.json` + `predictor.safetensors`, loaded without pickle.

The directory is written beside its destination and swapped in whole, so a failed save
never leaves a mix of old and new files, and never destroys the model that was there.
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

import facebone
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.predictors import predictor_from_state
from facebone.system.fr_system import FRSystem

FORMAT = 1
CONFIG = "config.json"
WEIGHTS = "predictor.safetensors"


def save_system(system: FRSystem, directory: str | Path, extra: dict | None = None) -> None:
    system.check_fitted()
    directory = Path(directory)
    predictor_config, tensors = system.predictor_.get_state()
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
        "training_pairs_sha256": system.training_pairs_sha256_,
        "n_training_pairs": system.n_training_pairs_,
        **(extra or {}),
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(staging / WEIGHTS))
        (staging / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
        _swap_in(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, directory: Path) -> None:
    if directory.exists() and not (directory / CONFIG).is_file():
        raise FaceBoneError(f"{directory} exists and is not a FaceBone model; not overwriting it")
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def read_config(directory: str | Path) -> dict:
    directory = Path(directory)
    if not directory.is_dir():
        raise FaceBoneError(f"model directory {directory} does not exist")
    try:
        config = json.loads((directory / CONFIG).read_text())
    except FileNotFoundError:
        raise FaceBoneError(
            f"{directory} is not a FaceBone model directory (no {CONFIG})"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FaceBoneError(f"{directory / CONFIG} is damaged ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise FaceBoneError(f"{directory / CONFIG}: not a FaceBone model of format {FORMAT}")
    return config


def load_system(
    directory: str | Path, cache: EmbeddingCache | None, progress: bool = True
) -> FRSystem:
    """Rebuild a trained system; its backbones must be the ones it was trained with."""
    directory = Path(directory)
    config = read_config(directory)
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except FileNotFoundError:
        raise FaceBoneError(f"{directory} has no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise FaceBoneError(f"{directory / WEIGHTS} is damaged ({error})") from None
    try:
        system = FRSystem(**config["system"])
        stored_backbones = config["backbones"]
        predictor = predictor_from_state(config["predictor"], tensors)
        embedding_dim = int(config["embedding_dim"])
        training = (config["training_pairs_sha256"], int(config["n_training_pairs"]))
    except (KeyError, TypeError, ValueError) as error:
        raise FaceBoneError(f"{directory / CONFIG} is incomplete ({error})") from None
    embedder = Embedder(system.backbones, cache, progress)
    for stored, backbone in zip(stored_backbones, embedder.backbones, strict=True):
        if stored.get("cache_key") != backbone.cache_key:
            raise FaceBoneError(
                f"backbone {backbone.name} differs from the one this model was trained with "
                f"({stored.get('cache_key')} vs {backbone.cache_key})"
            )
    system.embedder_ = embedder
    system.embedding_dim_ = embedding_dim
    system.predictor_ = predictor
    system.training_pairs_sha256_, system.n_training_pairs_ = training
    system.reset_query_stream()
    return system
