"""`facebone verify`: are two photos the same person?"""

import argparse
from pathlib import Path

from facebone.cli.common import (
    add_convert_color_argument,
    add_json_argument,
)
from facebone.cli.output import emit
from facebone.system import load_system


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="decide whether two photos show the same person",
        description="Detect and align the face in each photo and ask the trained system.",
    )
    parser.add_argument("image1", type=Path)
    parser.add_argument("image2", type=Path)
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_convert_color_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # A user's photos are not dataset images: they are never cached.
    system = load_system(args.model, cache=None, progress=False)
    try:
        answer = system.verify(args.image1, args.image2, args.convert_color)
    finally:
        system.embedder_.close()
    result = {"same": answer.same, "probability": answer.probability, "backbone": answer.backbone}
    verdict = "same person" if answer.same else "different people"
    emit(
        result, args.json, f"{verdict} (p={answer.probability:.3f}, answered by {answer.backbone})"
    )
    return 0
