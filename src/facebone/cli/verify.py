"""`facebone verify`: are two photos the same person?"""

import argparse
from pathlib import Path

from facebone.cli.common import (
    add_convert_color_argument,
    add_json_argument,
    add_key_file_argument,
    load_model,
)
from facebone.cli.output import emit
from facebone.errors import FaceBoneError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="decide whether two photos show the same person",
        description="Detect and align the face in each photo and ask the trained system.",
    )
    parser.add_argument("image1", type=Path, help="first photo")
    parser.add_argument("image2", type=Path, help="second photo")
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    parser.add_argument(
        "--face",
        type=_face_numbers,
        default=(1, 1),
        metavar="N[,M]",
        help="in photos with several faces, which one to use: N for both photos, N,M for each "
        "(1: the face covering the centre, else the largest; default 1)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also say which backbone answered (hidden by default for multi-backbone systems: "
        "it tells an attacker which model it is probing)",
    )
    add_convert_color_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _face_numbers(text: str) -> tuple[int, int]:
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a face number or two") from None
    if len(numbers) not in (1, 2) or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give N or N,M, counting faces from 1")
    return (numbers[0], numbers[-1])


def _run(args: argparse.Namespace) -> int:

    for image in (args.image1, args.image2):
        if not image.is_file():
            raise FaceBoneError(f"{image}: no such file")
    # A user's photos are not dataset images: they are never cached.
    system = load_model(args, cache=None, progress=False)
    try:
        answer = system.verify(args.image1, args.image2, args.convert_color, args.face)
    finally:
        system.embedder_.close()
    result = {"same": answer.same, "probability": answer.probability}
    text = f"{'same person' if answer.same else 'different people'} (p={answer.probability:.3f}"
    if args.explain or len(system.backbones) == 1:
        result["backbone"] = answer.backbone
        text += f", answered by {answer.backbone}"
    emit(result, args.json, text + ")")
    return 0
