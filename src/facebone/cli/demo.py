"""`facebone demo`: the web demo (Streamlit) on this machine."""

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from facebone.cli.common import add_key_file_argument, load_model, refuse_key_inside
from facebone.errors import FaceBoneError

# Uploaded faces stay on this machine: the demo has no log-in, so it listens on loopback only.
HOST = "127.0.0.1"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="open the web demo: verification, membership inference, privacy report",
        description=(
            "Serve the Streamlit demo on 127.0.0.1. Without --model it trains (or finds already "
            "trained in --workdir) a small default system from --data."
        ),
    )
    parser.add_argument("--model", type=Path, help="model directory for the verification page")
    parser.add_argument("--data", type=Path, help="image folder in LFW layout (ROOT/Name/*.jpg)")
    parser.add_argument("--results", type=Path, help="study results folder to report")
    parser.add_argument(
        "--gallery",
        metavar="STORE",
        help="add the enrolment and search page over this gallery of the model (a SQLite file, "
        "created empty if missing, or a postgresql:// URL of one made by `gallery create`)",
    )
    add_key_file_argument(parser)
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path.home() / ".cache" / "facebone" / "demo",
        help="where the demo keeps the systems it trains (default ~/.cache/facebone/demo)",
    )
    parser.add_argument(
        "--cache", type=Path, help="embedding cache folder (default: $FACEBONE_CACHE or ~/.cache)"
    )
    parser.add_argument(
        "--attacks",
        default=None,
        help="membership attacks on the membership page (default: rule-based,label-only,"
        "lira,blackbox-gb)",
    )
    parser.set_defaults(handler=_run)


def _check(args: argparse.Namespace) -> None:
    for name in ("data", "results"):
        value = getattr(args, name)
        if value is not None and not value.is_dir():
            raise FaceBoneError(f"--{name} {value} does not exist or is not a folder")
    if args.model is None and args.data is None:
        raise FaceBoneError("give --model DIR, or --data DIR to train the demo's default system")
    if not 1 <= args.port <= 65535:
        raise FaceBoneError(f"--port {args.port} is out of range (1-65535)")
    if args.data is not None:
        from facebone.atomic import check_outside_data

        check_outside_data(args.workdir, args.data, "--workdir")


def _run(args: argparse.Namespace) -> int:
    from facebone.app.config import DEFAULT_ATTACKS, DemoConfig
    from facebone.cli.common import open_cache, parse_attack_names
    from facebone.service.server import bind
    from facebone.system.model_dir import read_config

    _check(args)
    if args.model is not None:
        read_config(args.model)
    attacks = tuple(parse_attack_names(args.attacks)) if args.attacks else DEFAULT_ATTACKS
    bind(HOST, args.port).close()  # a busy port is a clear error here, not in Streamlit
    model, default_model = args.model, False
    if model is None:
        from facebone.app.lab import prepare_systems

        print(f"no --model given: preparing the demo's default systems from {args.data} ...")
        model = prepare_systems(args.data, args.workdir, open_cache(args))["defended"]
        default_model = True
        print(f"verifying with the default system (SFace + cosine predictor) in {model}")
    if args.gallery is not None:
        _prepare_gallery(args.gallery, model, args.key_file)
    config = DemoConfig(
        model=model,
        default_model=default_model,
        data=args.data,
        results=args.results,
        workdir=args.workdir,
        cache=open_cache(args).root,
        attacks=attacks,
        gallery=args.gallery,
        key_file=args.key_file,
    )
    script = Path(__file__).resolve().parents[1] / "app" / "main.py"
    # fmt: off
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", HOST, "--server.port", str(args.port),
        "--server.headless", "true", "--server.maxUploadSize", "10",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
        # A bug shows a generic message in the page; its traceback goes to this terminal.
        "--client.showErrorDetails", "none",
        "--", *config.to_argv(),
    ]
    # fmt: on
    print(f"demo on http://{HOST}:{args.port} (Ctrl-C stops it)", flush=True)
    return _run_child(command)


def _prepare_gallery(store: str, model: Path, key_file: Path | None) -> None:
    """Check that the gallery opens with the model and key, before the page does; a missing
    SQLite file becomes a new empty gallery."""
    from facebone.cli.gallery import refuse_store_inside
    from facebone.gallery.gallery import Gallery
    from facebone.gallery.store import is_postgres

    refuse_key_inside(key_file, "--key-file", model, "--model")
    refuse_store_inside(store, "--gallery", model)
    exists = is_postgres(store) or Path(store).exists()
    system = load_model(argparse.Namespace(model=model, key_file=key_file), None, False)
    try:
        with (Gallery.open if exists else Gallery.create)(store, system, model):
            pass
    finally:
        system.embedder_.close()
    if not exists:
        print(f"created an empty gallery in {store}")


def _run_child(command: list[str]) -> int:
    """Run Streamlit until it exits; stopping this command (Ctrl-C, SIGTERM) stops it too,
    and killing it (`kill -9`) has the kernel stop it."""
    from facebone.processes import dies_with_parent

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    child = subprocess.Popen(command, preexec_fn=dies_with_parent())
    try:
        return child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
