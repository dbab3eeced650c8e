"""The `facebone` command line.

Each command group lives in its own module with a `register(subparsers)` function that adds
its parser and sets `handler` to a function taking the parsed arguments and returning an exit
code. User errors (`FaceBoneError`) become one line on stderr and exit code 2. Command modules
import heavy libraries inside their handlers, so building this parser stays fast.
"""

import argparse
import importlib
import sys

from facebone.cli.common import Parser
from facebone.cli.output import configure_logging, end_progress_bars, stdout_gone
from facebone.errors import FaceBoneError

COMMAND_MODULES = (
    "facebone.cli.data",
    "facebone.cli.pairs",
    "facebone.cli.embed",
    "facebone.cli.bench",
    "facebone.cli.train",
    "facebone.cli.evaluate",
    "facebone.cli.verify",
    "facebone.cli.attack",
    "facebone.cli.experiment",
    "facebone.cli.study",
    "facebone.cli.report",
    "facebone.cli.audit",
    "facebone.cli.gallery",
    "facebone.cli.serve",
    "facebone.cli.demo",
)

EXIT_USER_ERROR = 2
# What a command killed by SIGPIPE reports: the reader of its output went away.
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="facebone",
        description="Face-verification privacy toolkit: systems, attacks and defenses.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return args.handler(args)
    except FaceBoneError as error:
        end_progress_bars()
        message = " ".join(str(error).split())
        print(f"facebone: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        end_progress_bars()
        print("facebone: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        stdout_gone()
        return EXIT_BROKEN_PIPE
