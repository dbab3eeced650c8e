"""Arguments that several commands share, parsed the same way everywhere."""

import argparse
from pathlib import Path

from facebone.attacks import check_attack_names, list_attacks
from facebone.backbones import Backbone, create_backbone
from facebone.embeddings import EmbeddingCache, default_cache_dir
from facebone.errors import FaceBoneError


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, required=True, help="image folder in LFW layout (ROOT/Name/*.jpg)"
    )


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"embedding cache folder (default: $FACEBONE_CACHE or {default_cache_dir()})",
    )


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_convert_color_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--convert-color",
        action="store_true",
        help="accept grayscale and transparent photos by converting them to RGB",
    )


def open_cache(args: argparse.Namespace) -> EmbeddingCache:
    return EmbeddingCache(args.cache if args.cache is not None else default_cache_dir())


def parse_backbone_specs(text: str) -> list[str]:
    """`sface,dlib` -> ['sface', 'dlib']; empty items and repeats are errors."""
    specs = [item.strip() for item in text.split(",")]
    if not all(specs):
        raise FaceBoneError(f"--backbones {text!r}: give a comma-separated list of names")
    if len(set(specs)) != len(specs):
        raise FaceBoneError(f"--backbones {text!r}: a backbone is listed twice")
    return specs


def create_backbones(text: str) -> list[Backbone]:
    return [create_backbone(spec) for spec in parse_backbone_specs(text)]


def parse_attack_names(text: str) -> list[str]:
    """`all`, or a comma-separated list of registered attack names."""
    if text.strip() == "all":
        return list_attacks()
    return check_attack_names(parse_names(text, "attacks"))


def parse_names(text: str, what: str) -> list[str]:
    """`a,b` -> ['a', 'b'] for option `--what`; empty items are an error."""
    names = [item.strip() for item in text.split(",")]
    if not all(names):
        raise FaceBoneError(f"--{what} {text!r}: give a comma-separated list of names")
    return names


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FaceBoneError(f"{what} {path} does not exist or is not a folder")
    return path
