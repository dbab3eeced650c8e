"""A study's TOML configuration, read and checked before any work starts.

    name = "quick"
    data = "../../shared/data/lfw"   # relative paths are relative to this file's folder
    output = "../runs/quick"
    backbones = ["sface", "dlib"]    # embedded up front; default: those the systems use

    [splits]
    seeds = [0, 1]                   # split seeds of every regime ...
    regime_seeds = { leaking = [0, 1, 2, 3, 4] }   # ... unless a regime has its own
    fractions = [0.4, 0.3, 0.3]      # target_train, target_test, attacker identities
    # files = { target_train = "a.csv", target_test = "b.csv", attacker = "c.csv" }

    [systems]
    defenses = ["none", "cosine-fusion"]   # named defenses (`facebone.experiments.defenses`)
    regimes = ["leaking"]                  # the regimes they (and tables without one) train in

    [[systems.table]]                # a system of one's own
    name = "dlib-dp"
    backbones = ["dlib"]
    predictor = "nn"
    dp_epsilon = 8.0
    regime = "leaking"

    [[regimes]]                      # a training recipe of one's own
    name = "n100-e60"
    n_train = 100
    epochs = 60

    [[attacks]]
    name = "lira-online"
    shadows = 8                      # optional: the attack's own default
    queries = 1                      # optional: 16 if the target's answers vary, else 1
    levels = ["pair", "identity"]    # optional: both

    [[attacks]]                      # attacks of the other families take their family's
    name = "decoder"                 # options (experiments/threats/options.py)
    targets = 256

Every mistake is one `FaceBoneError` line naming the file and the key; nothing is trained,
embedded or written before the whole file passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebone.atomic import check_outside_data
from facebone.attacks.membership.base import LEVELS, MAX_QUERIES, MAX_SHADOWS
from facebone.data.pairs import DEFAULT_FRACTIONS, ROLES
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import Defense, get_defense
from facebone.experiments.regimes import Regime, get_regime, list_regimes
from facebone.experiments.runner import describe_defense, describe_regime
from facebone.params import SEED, Constraints, value_problem
from facebone.studies.records import package_versions


@dataclass(frozen=True)
class AttackSpec:
    """One attack and its options; None keeps the attack's own default. Membership attacks
    take `shadows`, `queries` and `levels`; the other families their declared `options`."""

    name: str
    shadows: int | None = None
    queries: int | None = None
    levels: tuple[str, ...] = LEVELS
    family: str = "membership"
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class SystemSpec:
    """One system to train in each of `regimes`: a named defense or a system table."""

    defense: Defense
    regimes: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.defense.name


@dataclass(frozen=True)
class SplitSpec:
    """How the pair protocol of each seed is made: from identity fractions, or read from
    explicit pair files (the same pairs for every seed; only subsets and training vary)."""

    seeds: tuple[int, ...]
    regime_seeds: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    files: Mapping[str, Path] | None = None

    def seeds_of(self, regime: str) -> tuple[int, ...]:
        return self.regime_seeds.get(regime, self.seeds)


@dataclass(frozen=True)
class Target:
    """One target to train and attack: a system in a regime on a split seed."""

    system: SystemSpec
    regime: Regime
    seed: int


@dataclass(frozen=True)
class StudyConfig:
    """A checked study configuration; `describe()` is what `study.json` records."""

    name: str
    source: Path
    text: str
    data: Path
    output: Path
    backbones: tuple[str, ...]
    splits: SplitSpec
    systems: tuple[SystemSpec, ...]
    regimes: Mapping[str, Regime]
    attacks: tuple[AttackSpec, ...]

    def targets(self) -> list[Target]:
        """Every target, regime by regime, seed by seed, system by system."""
        return [
            Target(system, regime, seed)
            for regime in self.regimes.values()
            for seed in self.splits.seeds_of(regime.name)
            for system in self.systems
            if regime.name in system.regimes
        ]

    def seeds(self) -> list[int]:
        """Every split seed some target uses, in order."""
        return list(dict.fromkeys(target.seed for target in self.targets()))

    def design(self) -> dict[str, Any]:
        """What the figures depend on (not where data and results live), JSON-ready."""
        return {
            "backbones": list(self.backbones),
            "splits": {
                "seeds": list(self.splits.seeds),
                "regime_seeds": {r: list(s) for r, s in self.splits.regime_seeds.items()},
                "fractions": list(self.splits.fractions),
                "files": (
                    None
                    if self.splits.files is None
                    else {r: _file_sha256(p) for r, p in self.splits.files.items()}
                ),
            },
            "systems": {
                s.name: describe_defense(s.defense) | {"regimes": list(s.regimes)}
                for s in self.systems
            },
            "regimes": {name: describe_regime(r) for name, r in self.regimes.items()},
            "attacks": [
                {"name": a.name, "shadows": a.shadows, "queries": a.queries, "levels": a.levels}
                if a.family == "membership"
                else {"name": a.name, "family": a.family, **dict(a.options)}
                for a in self.attacks
            ],
        }

    def config_hash(self) -> str:
        return _digest(self.design())

    def target_hash(self, target: Target) -> str:
        """The hash of what one target's figures depend on: a resumed run checks it."""
        design = self.design()
        return _digest(
            {
                "splits": design["splits"],
                "system": design["systems"][target.system.name],
                "regime": design["regimes"][target.regime.name],
                "seed": target.seed,
                "attacks": design["attacks"],
            }
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": str(self.source),
            "config_hash": self.config_hash(),
            "data": str(self.data.resolve()),
            "output": str(self.output.resolve()),
            "versions": package_versions(),
            **self.design(),
        }


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Reader:
    """Reads one TOML table, each error naming the file and the key."""

    def __init__(self, source: Path, table: Mapping[str, Any], where: str = "") -> None:
        self.source = source
        self.table = dict(table)
        self.where = where

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, key: str, message: str) -> FaceBoneError:
        return FaceBoneError(f"{self.source}: {key}: {message}")

    def take(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        value = self.table.pop(name, default)
        # TOML's true/false are ints to Python: refuse them where a number is meant.
        wrong = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if value is not default and wrong:
            raise self.fail(self.key(name), f"expected {_kind_name(kinds)}, got {value!r}")
        return value

    def names(self, name: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        value = self.take(name, list, list(default))
        if not all(isinstance(item, str) and item for item in value):
            raise self.fail(self.key(name), f"expected a list of names, got {value!r}")
        if len(set(value)) != len(value):
            raise self.fail(self.key(name), "a name is listed twice")
        return tuple(value)

    def sub(self, name: str, index: int | None = None, table: Any = None) -> _Reader:
        key = self.key(name) if index is None else f"{self.key(name)}[{index}]"
        if not isinstance(table, Mapping):
            raise self.fail(key, f"expected a table, got {table!r}")
        return _Reader(self.source, table, key)

    def done(self) -> None:
        if self.table:
            raise self.fail(self.key(next(iter(self.table))), "unknown key")


def _kind_name(kinds: tuple[type, ...]) -> str:
    words = {
        str: "text",
        int: "a whole number",
        float: "a number",
        list: "a list",
        dict: "a table",
        bool: "true or false",
    }
    return " or ".join(words.get(k, k.__name__) for k in kinds)


def toml_value(value: Any) -> str:
    """A TOML value: JSON's string escapes are TOML's too (kept as UTF-8, which TOML
    requires of characters outside the Basic Multilingual Plane)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Path):
        return toml_value(str(value))
    if isinstance(value, Mapping):
        items = (f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def toml_text(document: Mapping[str, Any], header: str = "") -> str:
    """`document` (as `tomllib` reads a study configuration) written back as TOML: top-level
    tables as `[name]`, lists of tables as `[[name]]` (also one level down, as
    `[[systems.table]]`), other tables inline."""
    lines = [f"# {line}" for line in header.splitlines()]

    def body(table: Mapping[str, Any], prefix: str, top: bool) -> None:
        nested = []
        for key, value in table.items():
            if _is_table_list(value) or (top and isinstance(value, Mapping)):
                nested.append((key, value))
            else:
                lines.append(f"{_toml_key(key)} = {toml_value(value)}")
        for key, value in nested:
            name = f"{prefix}{_toml_key(key)}"
            if isinstance(value, Mapping):
                lines.extend(["", f"[{name}]"])
                body(value, f"{name}.", False)
            else:
                for entry in value:
                    lines.extend(["", f"[[{name}]]"])
                    body(entry, f"{name}.", False)

    body(document, "", True)
    return "\n".join(lines) + "\n"


def load_config(
    path: str | Path,
    data: str | Path | None = None,
    output: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    quick: bool = False,
) -> StudyConfig:
    """Read and check the study configuration at `path`; `data` and `output` (as the CLI's
    --data and --out give them) replace the file's data root and output folder, and each
    key of `overrides` replaces the file's (a table's keys one by one: `{"splits":
    {"seeds": [0]}}` keeps the other split keys). `quick` applies the file's own `[quick]`
    table the same way (its `[quick.attacks.NAME]` tables replace that attack's options): a
    preview of the same study in minutes. With overrides the configuration recorded for the
    study (`StudyConfig.text`) is the overridden one, with absolute paths."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FaceBoneError(f"cannot read study config {source}: {error}") from None
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FaceBoneError(f"{source}: bad TOML: {error}") from None
    preset = _quick_preset(source, parsed)
    if quick:
        if not preset:
            raise FaceBoneError(f"{source}: has no [quick] table, so it has no quick preset")
        overrides = {**preset, **(overrides or {})}
    for key, value in (overrides or {}).items():
        held = parsed.get(key)
        both_tables = isinstance(held, Mapping) and isinstance(value, Mapping)
        parsed[key] = {**held, **value} if both_tables else value
    reader = _Reader(source, parsed)
    base = source.resolve().parent
    name = reader.take("name", str, source.stem)
    data_root = _data_root(reader, base, data)
    output_dir = _output_dir(reader, base, output, data_root)
    backbones = reader.names("backbones")
    regimes = _regimes(reader)
    splits = _splits(reader, base, data_root, regimes)
    systems = _systems(reader, regimes)
    attacks = _attacks(reader)
    reader.done()
    used = {regime for system in systems for regime in system.regimes}
    regimes = {name: regime for name, regime in regimes.items() if name in used}
    backbones = _backbones(reader, backbones, systems)
    if overrides:
        text = _overridden_text(parsed, source, data_root, splits)
    return StudyConfig(
        name=name,
        source=source,
        text=text,
        data=data_root,
        output=output_dir,
        backbones=backbones,
        splits=splits,
        systems=systems,
        regimes=regimes,
        attacks=attacks,
    )


def _quick_preset(source: Path, parsed: dict[str, Any]) -> dict[str, Any]:
    """The overrides the file's `[quick]` table names (removed from `parsed`): its keys as
    top-level overrides, and `[quick.attacks.NAME]` merged into that attack's table."""
    preset = parsed.pop("quick", {})
    if not isinstance(preset, Mapping):
        raise FaceBoneError(f"{source}: quick: expected a table, got {preset!r}")
    preset = dict(preset)
    by_attack = preset.pop("attacks", None)
    if by_attack is None:
        return preset
    tables = parsed.get("attacks")
    if not isinstance(by_attack, Mapping) or not isinstance(tables, list):
        raise FaceBoneError(f"{source}: quick.attacks: expected tables named by attack")
    named = {t.get("name"): t for t in tables if isinstance(t, Mapping)}
    for attack, options in by_attack.items():
        if attack not in named or not isinstance(options, Mapping):
            raise FaceBoneError(
                f"{source}: quick.attacks.{attack}: not an attack of this study's [[attacks]]"
            )
    preset["attacks"] = [{**t, **by_attack.get(t.get("name"), {})} for t in tables]
    return preset


def _overridden_text(
    parsed: Mapping[str, Any], source: Path, data_root: Path, splits: SplitSpec
) -> str:
    """The checked, overridden configuration as TOML, to be copied into the output folder
    and rerun from there: its paths are absolute."""
    written = {**parsed, "data": str(data_root.resolve()), "output": "."}
    if splits.files is not None:
        files = {role: str(path.resolve()) for role, path in splits.files.items()}
        written["splits"] = {**parsed["splits"], "files": files}
    return toml_text(written, f"{source.name} with options given on the command line")


def _path_setting(
    reader: _Reader, base: Path, name: str, flag: str, override: str | Path | None, what: str
) -> tuple[Path, str]:
    """The path the flag overrides, else the config's `name` relative to its folder; with the
    key to name in errors."""
    given = reader.take(name, str)
    if override is not None:
        return Path(override), flag
    if given is None:
        raise reader.fail(name, f"missing: name {what}")
    return base / given, name


def _data_root(reader: _Reader, base: Path, override: str | Path | None) -> Path:
    what = "the image folder (LFW layout)"
    root, key = _path_setting(reader, base, "data", "--data", override, what)
    if not root.is_dir():
        raise reader.fail(key, f"data folder {root} does not exist or is not a folder")
    return root


def _output_dir(reader: _Reader, base: Path, override: str | Path | None, data_root: Path) -> Path:
    what = "the results folder (or pass --out)"
    folder, key = _path_setting(reader, base, "output", "--out", override, what)
    if key == "output":
        # Normalised so messages name `runs/quick`, not `configs/../runs/quick`.
        folder = Path(os.path.normpath(folder))
    if folder.exists() and not folder.is_dir():
        raise reader.fail(key, f"{folder} exists and is not a folder")
    try:
        check_outside_data(folder, data_root, "the results folder")
    except FaceBoneError as error:
        raise reader.fail(key, str(error)) from None
    return folder


def _seed_list(reader: _Reader, key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(map(SEED.accepts, value)):
        raise reader.fail(key, f"expected a non-empty list of seeds, each {SEED}, got {value!r}")
    if len(set(value)) != len(value):
        raise reader.fail(key, f"a seed is listed twice in {value!r}")
    return tuple(value)


def _splits(
    reader: _Reader, base: Path, data_root: Path, regimes: Mapping[str, Regime]
) -> SplitSpec:
    splits = reader.sub("splits", table=reader.take("splits", dict, {}))
    seeds = _seed_list(splits, splits.key("seeds"), splits.take("seeds", list, [0]))
    by_regime = splits.sub("regime_seeds", table=splits.take("regime_seeds", dict, {}))
    regime_seeds = {}
    for regime, value in by_regime.table.items():
        if regime not in regimes:
            raise splits.fail(by_regime.key(regime), f"unknown regime {regime!r}")
        regime_seeds[regime] = _seed_list(splits, by_regime.key(regime), value)
    fractions = splits.take("fractions", list)
    files = splits.take("files", dict)
    splits.done()
    if fractions is not None and files is not None:
        raise splits.fail(splits.key("files"), "give fractions or files, not both")
    if files is not None:
        return SplitSpec(seeds, regime_seeds, files=_split_files(splits, base, data_root, files))
    if fractions is None:
        return SplitSpec(seeds, regime_seeds)
    key = splits.key("fractions")
    if len(fractions) != len(ROLES) or not all(
        isinstance(f, int | float) and not isinstance(f, bool) and f > 0 for f in fractions
    ):
        raise splits.fail(
            key, f"expected {len(ROLES)} positive fractions ({', '.join(ROLES)}), got {fractions}"
        )
    total = sum(fractions)
    if total > 1 + 1e-6:
        raise splits.fail(key, f"fractions add up to {total:g} > 1: the splits would overlap")
    if total < 1 - 1e-6:
        raise splits.fail(key, f"fractions add up to {total:g}; they must add up to 1")
    return SplitSpec(seeds, regime_seeds, fractions=tuple(float(f) for f in fractions))


def _split_files(
    splits: _Reader, base: Path, data_root: Path, files: Mapping[str, Any]
) -> dict[str, Path]:
    """The pair files of each role, checked to exist and to share no person."""
    from facebone.attacks.base import pair_identities
    from facebone.data.pairs import read_pairs

    table = splits.sub("files", table=files)
    paths = {}
    for role in ROLES:
        value = table.take(role, str)
        if value is None:
            raise splits.fail(table.key(role), "missing: give a pairs CSV for every role")
        paths[role] = base / value
        if not paths[role].is_file():
            raise splits.fail(table.key(role), f"pairs file {paths[role]} does not exist")
    table.done()
    people: dict[str, str] = {}
    for role, path in paths.items():
        for pair in read_pairs(path, data_root).pairs:
            for who in pair_identities(pair):
                if people.setdefault(who, role) != role:
                    raise splits.fail(
                        table.key(role),
                        f"{path.name} shares person {who!r} with the {people[who]} file: "
                        "the splits overlap",
                    )
    return paths


def _regime_options() -> Constraints:
    """What a regime may set: the nn predictor's options as it declares them, but its seed,
    which each target draws."""
    from facebone.predictors.nn import NNPredictor

    return {k: v for k, v in NNPredictor._parameter_constraints.items() if k != "seed"}


def _options(entry: _Reader, constraints: Constraints, table: Mapping[str, Any]) -> dict:
    """The keys of `table` that `constraints` declares, taken from `entry` and checked; the
    others are left for `entry.done()` to refuse (or refused here when `table` is its own)."""
    options = {}
    for name in [name for name in table if name in constraints]:
        value = entry.take(name, object)
        problem = value_problem(constraints[name], value)
        if problem is not None:
            raise entry.fail(entry.key(name), problem)
        options[name] = value
    return options


def _regimes(reader: _Reader) -> dict[str, Regime]:
    """The built-in regimes and the config's own `[[regimes]]`."""
    regimes = {name: get_regime(name) for name in list_regimes()}
    for index, table in enumerate(reader.take("regimes", list, [])):
        entry = reader.sub("regimes", index, table)
        name = entry.take("name", str)
        if not name:
            raise entry.fail(entry.key("name"), "missing: give the regime a name")
        if name in regimes:
            raise entry.fail(entry.key("name"), f"regime {name!r} is already defined")
        n_train = entry.take("n_train", int)
        if n_train is not None and n_train < 10:
            raise entry.fail(entry.key("n_train"), f"use 10 or more pairs, got {n_train}")
        nn_params = _options(entry, _regime_options(), entry.table)
        description = entry.take(
            "description",
            str,
            f"{'all' if n_train is None else n_train} target_train pairs, nn options {nn_params}",
        )
        if entry.table:
            raise entry.fail(
                entry.key(next(iter(entry.table))),
                "unknown key; a regime takes name, description, n_train and the nn "
                f"predictor's options: {', '.join(_regime_options())}",
            )
        regimes[name] = Regime(name, description, n_train, nn_params)
    return regimes


def _systems(reader: _Reader, regimes: Mapping[str, Regime]) -> tuple[SystemSpec, ...]:
    table = reader.sub("systems", table=reader.take("systems", dict, {}))
    regime_names = table.names("regimes", ("default",))
    for index, regime in enumerate(regime_names):
        if regime not in regimes:
            raise table.fail(f"{table.key('regimes')}[{index}]", f"unknown regime {regime!r}")
    systems: list[SystemSpec] = []
    for index, name in enumerate(table.names("defenses")):
        try:
            defense = get_defense(name)
        except FaceBoneError as error:
            raise table.fail(f"{table.key('defenses')}[{index}]", str(error)) from None
        systems.append(SystemSpec(defense, regime_names))
    for index, entry in enumerate(table.take("table", list, [])):
        systems.append(_system_table(table.sub("table", index, entry), regimes, regime_names))
    table.done()
    if not systems:
        raise table.fail(table.key("defenses"), "no system: name defenses or add system tables")
    names = [s.name for s in systems]
    repeated = next((n for n in names if names.count(n) > 1), None)
    if repeated:
        raise table.fail(table.key("table"), f"system name {repeated!r} is used twice")
    return tuple(systems)


def _system_table(
    entry: _Reader, regimes: Mapping[str, Regime], default_regimes: tuple[str, ...]
) -> SystemSpec:
    from facebone.predictors import list_predictors
    from facebone.system.policies import ASSIGN_POLICIES, INFER_POLICIES, MITIGATIONS

    name = entry.take("name", str)
    if not name:
        raise entry.fail(entry.key("name"), "missing: give the system a name")
    backbones = entry.names("backbones", ("sface",))
    for index, spec in enumerate(backbones):
        _check_backbone(entry, f"{entry.key('backbones')}[{index}]", spec)
    predictor = entry.take("predictor", str, "nn")
    if predictor not in list_predictors():
        raise entry.fail(
            entry.key("predictor"),
            f"unknown predictor {predictor!r}; choose from: {', '.join(list_predictors())}",
        )
    choices = {}
    for option, allowed, default in (
        ("mitigation", MITIGATIONS, "multi" if len(backbones) > 1 else "none"),
        ("assign", ASSIGN_POLICIES, "all"),
        ("infer", INFER_POLICIES, "random"),
    ):
        choices[option] = entry.take(option, str, default)
        if choices[option] not in allowed:
            raise entry.fail(
                entry.key(option),
                f"unknown {option} {choices[option]!r}; choose from: {', '.join(allowed)}",
            )
    params = _predictor_params(entry, predictor)
    epsilon = entry.take("dp_epsilon", object)
    if epsilon is not None:
        if predictor != "nn":
            raise entry.fail(entry.key("dp_epsilon"), "DP needs predictor 'nn'")
        problem = value_problem(_regime_options()["dp_epsilon"][:1], epsilon)
        if problem is not None:
            raise entry.fail(entry.key("dp_epsilon"), problem)
        params["dp_epsilon"] = float(epsilon)
    regime = entry.take("regime", str)
    if regime is not None and regime not in regimes:
        raise entry.fail(entry.key("regime"), f"unknown regime {regime!r}")
    description = entry.take("description", str, f"{' + '.join(backbones)}, {predictor} predictor")
    fixed = entry.take("fixed_backbone", str)
    entry.done()
    defense = Defense(
        name=name,
        description=description,
        backbones=backbones,
        predictor=predictor,
        predictor_params=params,
        fixed_backbone=fixed,
        **choices,
    )
    return SystemSpec(defense, default_regimes if regime is None else (regime,))


def _predictor_params(entry: _Reader, predictor: str) -> dict[str, Any]:
    """A system table's `predictor_params`: options its predictor declares (but the seed,
    which each target draws), each checked against the predictor's constraints."""
    from facebone.predictors import get_predictor_class

    constraints = {
        k: v
        for k, v in get_predictor_class(predictor)._parameter_constraints.items()
        if k != "seed"
    }
    table = entry.sub("predictor_params", table=entry.take("predictor_params", dict, {}))
    params = _options(table, constraints, dict(table.table))
    if table.table:
        raise table.fail(
            table.key(next(iter(table.table))),
            f"unknown option of the {predictor} predictor; its options are: "
            f"{', '.join(constraints) or 'none'}",
        )
    return params


def attack_min_shadows(name: str) -> int:
    """The fewest shadows attack `name` can train with, as its class declares it
    (`ShadowAttack.min_shadows`; 1 for an attack without shadows, which ignores them)."""
    from facebone.attacks.registry import ATTACKS

    return getattr(ATTACKS.get(name), "min_shadows", 1)


def _attacks(reader: _Reader) -> tuple[AttackSpec, ...]:
    from facebone.attacks.registry import ATTACKS, family_of

    tables = reader.take("attacks", list, [])
    if not tables:
        raise reader.fail("attacks", "missing: add at least one [[attacks]] table")
    attacks = []
    for index, table in enumerate(tables):
        entry = reader.sub("attacks", index, table)
        name = entry.take("name", str)
        if name is None:
            raise entry.fail(entry.key("name"), "missing: name the attack")
        if name not in ATTACKS:
            raise entry.fail(
                entry.key("name"),
                f"unknown attack {name!r}; choose from: {', '.join(ATTACKS.list())}",
            )
        family = family_of(name)
        if family == "membership":
            attacks.append(_membership_attack(entry, name))
        else:
            attacks.append(AttackSpec(name, family=family, options=_threat_options(entry, family)))
        entry.done()
    names = [a.name for a in attacks]
    repeated = next((n for n in names if names.count(n) > 1), None)
    if repeated:
        raise reader.fail("attacks", f"attack {repeated!r} is listed twice")
    return tuple(attacks)


def _membership_attack(entry: _Reader, name: str) -> AttackSpec:
    from facebone.attacks.registry import attack_class

    shadows = entry.take("shadows", int)
    if shadows is not None and shadows < attack_min_shadows(name):
        raise entry.fail(
            entry.key("shadows"),
            f"{name} needs at least {attack_min_shadows(name)} shadows, got {shadows}",
        )
    most = getattr(attack_class(name), "max_shadows", MAX_SHADOWS)
    if shadows is not None and shadows > most:
        raise entry.fail(entry.key("shadows"), f"at most {most}, got {shadows}")
    queries = entry.take("queries", int)
    if queries is not None and not 1 <= queries <= MAX_QUERIES:
        raise entry.fail(entry.key("queries"), f"must be 1 to {MAX_QUERIES}, got {queries}")
    levels = entry.names("levels", LEVELS)
    if not levels:
        raise entry.fail(entry.key("levels"), f"name at least one of {', '.join(LEVELS)}")
    for level in levels:
        if level not in LEVELS:
            raise entry.fail(
                entry.key("levels"),
                f"unknown level {level!r}; choose from: {', '.join(LEVELS)}",
            )
    return AttackSpec(name, shadows, queries, tuple(levels))


def _threat_options(entry: _Reader, family: str) -> tuple[tuple[str, Any], ...]:
    """The options given for an attack of `family`, each checked against its declaration
    (`experiments.threats.options`): whole numbers within the declared bounds, or a
    non-empty list of them where a list is declared."""
    from facebone.experiments.threats.options import FAMILY_OPTIONS

    given = []
    for option_name, option in FAMILY_OPTIONS[family].items():
        value = entry.take(option_name, option.kind)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        if not items:
            raise entry.fail(entry.key(option_name), "give at least one value")
        for item in items:
            if not isinstance(item, int) or isinstance(item, bool):
                raise entry.fail(entry.key(option_name), f"expected whole numbers, got {item!r}")
            if not option.minimum <= item <= option.maximum:
                raise entry.fail(
                    entry.key(option_name),
                    f"must be from {option.minimum} to {option.maximum}, got {item}",
                )
        given.append((option_name, tuple(value) if isinstance(value, list) else value))
    return tuple(given)


def _check_backbone(reader: _Reader, key: str, spec: str) -> None:
    """`spec` names a registered backbone (`name` or `name:PATH`)."""
    from facebone.backbones import list_backbones

    known = list_backbones()
    name, _, weights = spec.partition(":")
    if name not in known:
        raise reader.fail(key, f"unknown backbone {spec!r}; choose from: {', '.join(known)}")
    if weights and not Path(weights).is_file():
        raise reader.fail(key, f"the model file {weights} of backbone {spec!r} does not exist")


def _backbones(
    reader: _Reader, listed: tuple[str, ...], systems: Sequence[SystemSpec]
) -> tuple[str, ...]:
    """The backbones to embed with: those listed (each registered, and covering every
    system's), or by default those the systems use."""
    for index, spec in enumerate(listed):
        _check_backbone(reader, f"backbones[{index}]", spec)
    used = tuple(dict.fromkeys(b for s in systems for b in s.defense.backbones))
    missing = [b for b in used if listed and b not in listed]
    if missing:
        raise reader.fail("backbones", f"{missing[0]!r} is used by a system but not listed")
    return listed or used
