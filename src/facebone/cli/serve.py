"""`facebone serve`: the REST API (POST /verify, GET /healthz, POST /embed when enabled, docs at
/docs)."""

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from facebone.cli.common import (
    LazyNames,
    add_key_file_argument,
    check_seconds,
    load_model,
    refuse_key_inside,
)
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from facebone.gallery.gallery import Gallery
    from facebone.service.guards import ApiKey

OUTPUT_NAMES = LazyNames("facebone.system.output_policy", "OUTPUT_POLICIES")
# A key file holds a few keys, one a line; more is not a key file (and /dev/zero never ends).
MAX_KEY_FILE_BYTES = 64 * 1024
MIN_KEY_LENGTH = 16


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a trained system over HTTP (REST API)",
        description=(
            "Answer POST /verify (and POST /embed with --enable-embed, a gallery's routes with "
            "--gallery) with a trained system; "
            "OpenAPI docs at /docs. Listens on 127.0.0.1 only unless --host says otherwise, "
            "which needs --api-key-file. With keys, only GET /healthz answers without one, and "
            "each route only to keys with its scope; without keys every enabled route answers."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument(
        "--api-key-file",
        type=Path,
        help="file of the keys clients send in the X-API-Key header, one a line (16 or more "
        "characters each), each alone (scope verify) or followed by its scopes, e.g. "
        "'KEY verify,identify' (scopes: verify, identify, enrol, admin, embed); a route outside "
        "a key's scopes answers 403; each key is a client of its own for --query-budget",
    )
    parser.add_argument(
        "--gallery",
        metavar="STORE",
        help="also serve this gallery (made by `facebone gallery create` for --model): POST "
        "/subjects, POST /subjects/{id}/faces and DELETE /subjects/{id} (scope enrol), POST "
        "/identify (identify), POST /subjects/{id}/verify (verify), GET /subjects (admin)",
    )
    parser.add_argument(
        "--enable-embed",
        action="store_true",
        help="serve POST /embed, which hands out the templates the system compares (with "
        "keys, only to those with the embed scope); without it the route does not exist",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=8,
        help="requests at work at once, counted once their body is in; more are answered 503",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=64,
        help="connections open at once; more are answered 503 and closed",
    )
    parser.add_argument(
        "--max-connections-per-client",
        type=int,
        default=16,
        help="connections open at once from one address; more are answered 503 and closed "
        "(behind a proxy, where every client has its address, give --max-connections)",
    )
    parser.add_argument(
        "--client-timeout",
        type=float,
        default=10.0,
        help="seconds a client gets for a request's headers and for any pause in its body "
        "(which must also average 16 KiB/s after this long); else 408",
    )
    parser.add_argument(
        "--deploy",
        type=Path,
        metavar="TOML",
        help="serve as a deployment file says (e.g. configs/deploy.toml): its defense's output "
        "policy and its [service] query budget, unless --output or --query-budget are given; "
        "the model must have been trained with the same --deploy",
    )
    parser.add_argument(
        "--output",
        choices=OUTPUT_NAMES,
        metavar="POLICY",
        help="what /verify shows of P(same) (%(choices)s): the probability (default), a coarse "
        "level (the middle of its 0.1-wide band) or the decision as 0/1; the less shown, the "
        "less score-based attacks learn",
    )
    parser.add_argument(
        "--query-budget",
        type=int,
        help="answers per client (per API key, else per address), each pair verified or "
        "photo embedded counting one; more are answered 429 (default: unlimited)",
    )
    parser.add_argument(
        "--query-window",
        type=float,
        help="seconds after a client's first counted answer when its count starts again "
        "(default: only when the server restarts)",
    )
    parser.set_defaults(handler=_run)


def read_api_keys(path: Path) -> tuple["ApiKey", ...]:
    """The keys of an API key file: its non-empty lines, each a key of 16 or more characters,
    alone (the default scopes) or followed by a blank and its scopes, comma-separated."""
    from facebone.service.guards import DEFAULT_SCOPES, ApiKey

    try:
        with path.open("rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FaceBoneError(f"cannot read the API key file {path} ({error})") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise FaceBoneError(f"the API key file {path} is over {MAX_KEY_FILE_BYTES // 1024} KiB")
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > 2:
            raise FaceBoneError(
                f"line {number} of the API key file {path} is not 'KEY' or 'KEY scope,scope'"
            )
        if len(fields[0]) < MIN_KEY_LENGTH:
            raise FaceBoneError(f"an API key in {path} is shorter than {MIN_KEY_LENGTH} characters")
        scopes = frozenset(fields[1].split(",")) if len(fields) == 2 else DEFAULT_SCOPES
        try:
            keys.append(ApiKey(fields[0], scopes))
        except ValueError as error:
            raise FaceBoneError(f"line {number} of the API key file {path}: {error}") from None
    if not keys:
        raise FaceBoneError(f"the API key file {path} holds no key")
    if len({api_key.key for api_key in keys}) != len(keys):
        raise FaceBoneError(f"the API key file {path} holds a key twice")
    return tuple(keys)


def _apply_deployment(args: argparse.Namespace):
    """The deployment file's settings where no flag gave one; the deployment (or None)."""
    if args.deploy is None:
        args.output = args.output or "probability"
        return None
    from facebone.system.deployment import load_deployment

    deployment = load_deployment(args.deploy)
    args.output = args.output or deployment.output
    if args.query_budget is None:
        args.query_budget = deployment.query_budget
        args.query_window = args.query_window or deployment.query_window
    return deployment


def _check_options(args: argparse.Namespace) -> None:
    """Every option, before anything is read or loaded."""
    from facebone.service.server import LOOPBACK

    if args.host not in LOOPBACK and args.api_key_file is None:
        raise FaceBoneError(
            f"--host {args.host} lets other machines in; give --api-key-file to require a key"
        )
    for flag, value in (
        ("--max-concurrent", args.max_concurrent),
        ("--max-connections", args.max_connections),
        ("--max-connections-per-client", args.max_connections_per_client),
        ("--query-budget", args.query_budget),
    ):
        if value is not None and value < 1:
            raise FaceBoneError(f"{flag} must be at least 1")
    check_seconds("--client-timeout", args.client_timeout)
    check_seconds("--query-window", args.query_window)
    if args.query_window is not None and args.query_budget is None:
        raise FaceBoneError("--query-window needs --query-budget")
    refuse_key_inside(args.key_file, "--key-file", args.model, "--model")
    refuse_key_inside(args.api_key_file, "--api-key-file", args.model, "--model")
    if args.gallery is not None:
        from facebone.cli.gallery import refuse_store_inside

        refuse_store_inside(args.gallery, "--gallery", args.model)


@contextmanager
def _open_gallery(args: argparse.Namespace, system) -> Iterator["Gallery | None"]:
    """The gallery of --gallery (None without), closed when the server stops."""
    if args.gallery is None:
        yield None
        return
    from facebone.gallery.gallery import Gallery

    with Gallery.open(args.gallery, system, args.model) as gallery:
        gallery.warm_up()  # the first identification must not wait for the index
        yield gallery


def _run(args: argparse.Namespace) -> int:
    from facebone.service.connections import ConnectionLimits
    from facebone.service.server import bind, run_app
    from facebone.system.output_policy import OutputPolicy

    deployment = _apply_deployment(args)
    _check_options(args)
    api_keys = read_api_keys(args.api_key_file) if args.api_key_file else ()
    sock = bind(args.host, args.port)

    from facebone.service.app import ServiceSettings, create_app

    settings = ServiceSettings(
        max_concurrent=args.max_concurrent,
        api_keys=api_keys,
        output=OutputPolicy(args.output),
        query_budget=args.query_budget,
        query_window=args.query_window,
        enable_embed=args.enable_embed,
    )
    limits = ConnectionLimits(
        args.max_connections, args.client_timeout, per_client=args.max_connections_per_client
    )
    try:
        # Photos sent to the service are never cached.
        system = load_model(args, cache=None, progress=False)
        try:
            if deployment is not None:
                deployment.check_model(system)
            system.embedder_.warm_up()  # the first request must not wait for dlib's workers
            with _open_gallery(args, system) as gallery:
                app = create_app(system, settings, gallery)
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                print(f"serving on http://{shown}:{port} (API docs at /docs)", flush=True)
                run_app(app, sock, limits)
        finally:
            system.embedder_.close()
    finally:
        sock.close()
    print("server stopped", file=sys.stderr)
    return 0
