"""`facebone serve`: the REST API (POST /verify, POST /embed, GET /healthz, docs at /docs)."""

import argparse
import sys
from pathlib import Path

from facebone.cli.common import add_key_file_argument, load_model
from facebone.errors import FaceBoneError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a trained system over HTTP (REST API)",
        description=(
            "Answer POST /verify and POST /embed with a trained system; OpenAPI docs at /docs. "
            "Listens on 127.0.0.1 only unless --host says otherwise, which needs --api-key-file."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument(
        "--api-key-file",
        type=Path,
        help="file holding the key that clients must send in the X-API-Key header",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=8,
        help="requests at work at once; more are answered 503 (default 8)",
    )
    parser.set_defaults(handler=_run)


def read_api_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise FaceBoneError(f"cannot read the API key file {path} ({error})") from None
    if len(key) < 16:
        raise FaceBoneError(f"the API key in {path} is shorter than 16 characters")
    return key


def _run(args: argparse.Namespace) -> int:
    from facebone.service.server import LOOPBACK, bind, run_app

    if args.host not in LOOPBACK and args.api_key_file is None:
        raise FaceBoneError(
            f"--host {args.host} lets other machines in; give --api-key-file to require a key"
        )
    if args.max_concurrent < 1:
        raise FaceBoneError("--max-concurrent must be at least 1")
    api_key = read_api_key(args.api_key_file) if args.api_key_file else None
    sock = bind(args.host, args.port)

    from facebone.service.app import ServiceSettings, create_app

    # Photos sent to the service are never cached.
    system = load_model(args, cache=None, progress=False)
    try:
        system.embedder_.warm_up()  # the first request must not wait for dlib's workers
        app = create_app(system, ServiceSettings(args.max_concurrent, api_key))
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"serving on http://{shown}:{port} (API docs at /docs)", flush=True)
        run_app(app, sock)
    finally:
        system.embedder_.close()
        sock.close()
    print("server stopped", file=sys.stderr)
    return 0
