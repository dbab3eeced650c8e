"""`facebone study`: run a study configuration (resuming an interrupted run), export results."""

import argparse
from pathlib import Path

from facebone.cli.common import add_cache_argument, add_json_argument, open_cache
from facebone.cli.output import emit
from facebone.errors import FaceBoneError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "study",
        help="run a study from a TOML configuration, or export its results",
        description="Configurable privacy studies whose results survive interruption.",
    )
    commands = parser.add_subparsers(dest="study", required=True, metavar="ACTION")
    run = commands.add_parser(
        "run",
        help="run a study configuration (a rerun resumes where it stopped)",
        description=(
            "Check CONFIG, then run its grid: splits -> embeddings -> each system -> utility "
            "-> each attack. Each target's results go into results.sqlite in the output "
            "folder as it finishes; running again skips the finished targets."
        ),
    )
    run.add_argument(
        "config", type=Path, help="study configuration (TOML), e.g. configs/quick.toml"
    )
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the jobs run: local processes, or Ray tasks",
    )
    run.add_argument(
        "--address",
        help="Ray cluster address for --executor ray (e.g. auto, ray://host:10001; default: "
        "start a local Ray instance); every node must see the data and cache at the same paths",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local worker processes, or CPUs of a local Ray instance (at least 2)",
    )
    run.add_argument(
        "--quick",
        action="store_true",
        help="apply the config's own [quick] preset (fewer seeds, shadows and targets): a "
        "preview of the same study in minutes",
    )
    run.add_argument("--data", type=Path, help="image folder, replacing the config's data root")
    run.add_argument("--out", type=Path, help="results folder, replacing the config's output")
    run.add_argument(
        "--force",
        action="store_true",
        help="start afresh in an output folder that holds another study's results (they are "
        "replaced), or start a study in one that holds other files (its study.json and "
        "config.toml are replaced, the others left as they are)",
    )
    add_cache_argument(run)
    add_json_argument(run)
    run.set_defaults(handler=_run)

    export = commands.add_parser(
        "export",
        help="write a study's results as JSON or CSV",
        description="One row per system x regime x attack x level x seed (CSV), or everything, "
        "ROC points included (JSON).",
    )
    export.add_argument("results", type=Path, help="the study's output folder")
    export.add_argument("--format", choices=("json", "csv"), default="json", help="%(choices)s")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    export.add_argument("--force", action="store_true", help="replace --out if it exists")
    export.set_defaults(handler=_export)


def _run(args: argparse.Namespace) -> int:
    import time

    from facebone.studies.config import load_config
    from facebone.studies.engine import run_study
    from facebone.studies.executors import create_executor

    if args.workers < 1:
        raise FaceBoneError(f"--workers must be 1 or more, got {args.workers}")
    if args.address is not None and args.executor != "ray":
        raise FaceBoneError("--address needs --executor ray")
    config = load_config(args.config, data=args.data, output=args.out, quick=args.quick)
    executor = create_executor(args.executor, open_cache(args), args.address, args.workers)
    started = time.perf_counter()
    try:
        records = run_study(config, executor, progress=not args.json, force=args.force)
    finally:
        executor.close()
    wall_s = time.perf_counter() - started
    lines = [f"results in {config.output} ({len(records.attacks)} attack rows)"]
    lines += _summary_lines(records)
    lines.append(f"wall time {wall_s:.0f} s")
    emit(
        {
            "out": str(config.output),
            "config_hash": config.config_hash(),
            "executor": args.executor,
            "targets": len(records.utility),
            "attack_rows": len(records.attacks),
            "wall_s": wall_s,
        },
        args.json,
        "\n".join(lines),
    )
    return 0


def _summary_lines(records) -> list[str]:
    """Per regime and system: mean accuracy, and each attack's mean pair-level AUC."""
    from facebone.experiments.statistics import mean_sd

    lines = []
    order = {name: index for index, name in enumerate(records.study.get("systems", {}))}
    groups = sorted(
        {(u.key.regime, u.key.system) for u in records.utility},
        key=lambda group: (group[0], order.get(group[1], len(order)), group[1]),
    )
    for regime, system in groups:
        accuracy = mean_sd(
            [
                u.accuracy
                for u in records.utility
                if (u.key.regime, u.key.system) == (regime, system)
            ]
        )
        aucs = {}
        for record in records.attacks:
            key = record.key
            if (key.regime, key.system, key.level) == (regime, system, "pair"):
                aucs.setdefault(key.attack, []).append(record.auc)
        attacks = "  ".join(f"{a} {mean_sd(v)['mean']:.3f}" for a, v in aucs.items())
        lines.append(
            f"{regime:8s} {system:22s} accuracy {accuracy['mean']:.3f}  pair AUC: {attacks}"
        )
    return lines


def _export(args: argparse.Namespace) -> int:
    from facebone.atomic import check_outside_data, write_text_atomic
    from facebone.cli.output import check_outputs
    from facebone.studies.store import ResultStore

    if not args.results.is_dir():
        raise FaceBoneError(f"results folder {args.results} does not exist or is not a folder")
    if args.out is not None:
        check_outputs("--out", [args.out], args.force)
    store = ResultStore(args.results)
    data = store.data_root()
    if args.out is not None and data is not None:
        check_outside_data(args.out, data, "--out")
    text = store.export(args.format)
    if args.out is None:
        emit({}, False, text.rstrip("\n"))
        return 0
    write_text_atomic(args.out, text)
    return 0
