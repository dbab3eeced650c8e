"""Arguments that several commands share, parsed the same way everywhere.

Nothing here imports a heavy library at module level: the parser of every command is built on
each start, so `facebone --help` and a quick `verify` must not wait for torch, ART or OpenCV.
Registries whose names the options list are read through `LazyNames`, only when shown or
checked.
"""

import argparse
import functools
import importlib
import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from facebone.atomic import check_outside_data, check_writable
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from facebone.backbones import Backbone
    from facebone.embeddings import EmbeddingCache


class HelpFormatter(argparse.HelpFormatter):
    """Adds each option's default to its help, unless the help already gives it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False
        if (
            action.option_strings
            and not unset
            and action.default is not argparse.SUPPRESS
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """The parser class of every command, so every help shows defaults the same way."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


class LazyNames(Sequence[str]):
    """The names `module.attribute` holds (or returns, if a function), looked up when
    argparse checks or shows them (as `choices`, or as `%(names)s` in a help), not when the
    parser is built."""

    def __init__(self, module: str, attribute: str) -> None:
        self.module = module
        self.attribute = attribute

    @functools.cached_property
    def names(self) -> list[str]:
        value = getattr(importlib.import_module(self.module), self.attribute)
        return list(value() if callable(value) else value)

    def __getitem__(self, index):
        return self.names[index]

    def __len__(self) -> int:
        return len(self.names)

    def __str__(self) -> str:
        return ", ".join(self.names)


ATTACK_NAMES = LazyNames("facebone.attacks.membership.runner", "DEFAULT_ATTACKS")
PREDICTOR_NAMES = LazyNames("facebone.predictors", "list_predictors")


class LazyText:
    """Text worked out by `make()` only when a help shows it."""

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make

    def __str__(self) -> str:
        return str(self.make())


def lazy_help(action: argparse.Action, **parts: object) -> argparse.Action:
    """Let `action.help` use `%(key)s` for each of `parts` (`LazyNames`, `LazyText`): argparse
    fills a help from its action's attributes, so their text is read only if it is shown."""
    for key, part in parts.items():
        setattr(action, key, part)
    return action


def _nn_default(name: str) -> str:
    """The nn predictor's default for its argument `name`, as a help shows it."""
    from facebone.predictors.nn import NNPredictor

    default = inspect.signature(NNPredictor).parameters[name].default
    if isinstance(default, tuple):
        return ",".join(str(value) for value in default)
    return "none" if default is None else str(default)


def add_nn_option(group: argparse._ActionsContainer, flag: str, **kwargs) -> None:
    """An nn-predictor option, unset unless given; its help shows the predictor's default."""
    action = group.add_argument(flag, **kwargs)
    if "default" not in (action.help or ""):
        action.help = f"{action.help} (default: %(nn_default)s)"
        lazy_help(action, nn_default=LazyText(functools.partial(_nn_default, action.dest)))


def add_data_argument(parser: argparse._ActionsContainer, required: bool = True) -> None:
    parser.add_argument(
        "--data", type=Path, required=required, help="image folder in LFW layout (ROOT/Name/*.jpg)"
    )


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    from facebone.embeddings.cache import default_cache_dir

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


def add_force_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"write {what} into a folder that also holds other files: FaceBone's own files "
        "there are replaced, the others left as they are",
    )


def open_cache(args: argparse.Namespace) -> "EmbeddingCache":
    """The cache `--cache` names (else the default), checked to be writable, and outside
    `--data` as every output is, before any work."""
    from facebone.embeddings.cache import EmbeddingCache, default_cache_dir

    root = args.cache if args.cache is not None else default_cache_dir()
    if getattr(args, "data", None) is not None:
        check_outside_data(root, args.data, "embedding cache")
    check_writable(root, "embedding cache", folder=True)
    return EmbeddingCache(root)


def parse_backbone_specs(text: str) -> list[str]:
    """`sface,dlib` -> ['sface', 'dlib']; empty items and repeats are errors."""
    specs = [item.strip() for item in text.split(",")]
    if not all(specs):
        raise FaceBoneError(f"--backbones {text!r}: give a comma-separated list of names")
    if len(set(specs)) != len(specs):
        raise FaceBoneError(f"--backbones {text!r}: a backbone is listed twice")
    return specs


def create_backbones(text: str) -> list["Backbone"]:
    from facebone.backbones import create_backbone

    return [create_backbone(spec) for spec in parse_backbone_specs(text)]


def parse_attack_names(text: str) -> list[str]:
    """`all` (every membership attack that needs only the black box), or a comma-separated
    list of registered attack names."""
    from facebone.attacks import check_attack_names
    from facebone.attacks.membership.runner import DEFAULT_ATTACKS

    if text.strip() == "all":
        return list(DEFAULT_ATTACKS)
    return check_attack_names(parse_names(text, "attacks"), family="membership")


def seed_value(text: str) -> int:
    """The argparse type of every --seed: a whole number in `params.SEED`'s range."""
    from facebone.params import SEED, value_problem

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    problem = value_problem([SEED], value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def check_seconds(flag: str, value: float | None) -> None:
    """A duration option (None: not given) is a positive, finite number of seconds: a socket
    given NaN or a negative timeout raises, and an infinite one waits for ever."""
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise FaceBoneError(f"{flag} must be a positive number of seconds, got {value}")


def parse_seeds(text: str, flag: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2] for option `flag`: distinct seeds, each as --seed takes them."""
    try:
        seeds = [seed_value(part) for part in text.split(",")]
    except argparse.ArgumentTypeError as error:
        raise FaceBoneError(f"{flag} {text!r}: each seed {error}") from None
    if len(set(seeds)) != len(seeds):
        raise FaceBoneError(f"{flag} {text!r}: a seed is listed twice")
    return seeds


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


def add_key_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        type=Path,
        help="template-protection key file of a model trained with --template-protection",
    )


def refuse_key_inside(key: Path | None, key_flag: str, folder: Path, folder_flag: str) -> None:
    """A key file inside a model folder is refused: whoever copies the model would have it."""
    if key is not None and key.resolve().is_relative_to(folder.resolve()):
        raise FaceBoneError(
            f"{key_flag} {key} is inside {folder_flag} {folder}: a model folder must never hold "
            "its key, or whoever copies the model has it; keep the key elsewhere"
        )


def load_model(args: argparse.Namespace, cache: "EmbeddingCache | None", progress: bool):
    """The `FRSystem` in `--model`, with the keys of `--key-file` when it protects templates:
    a missing, needless or wrong key file is one line naming the flag."""
    from facebone.protection import keys_fingerprint, load_keys
    from facebone.system import load_system
    from facebone.system.model_dir import read_config

    config = read_config(args.model)
    protection = config.get("system", {}).get("template_protection")
    keys = None
    if protection is None and args.key_file is not None:
        raise FaceBoneError(f"--key-file given, but --model {args.model} protects no templates")
    if protection is not None:
        if args.key_file is None:
            raise FaceBoneError(
                f"--model {args.model} uses template protection {protection!r}: "
                "give its key file with --key-file"
            )
        keys = load_keys(args.key_file)
        if keys_fingerprint(keys) != config.get("key_fingerprint"):
            raise FaceBoneError(
                f"--key-file {args.key_file} is not the key of --model {args.model} "
                "(its fingerprint differs)"
            )
    return load_system(args.model, cache, progress, keys=keys)
