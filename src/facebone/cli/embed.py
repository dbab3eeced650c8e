"""`facebone embed`: fill the embedding cache for a data folder, or embed a few photos."""

import argparse
from pathlib import Path

from facebone.cli.common import (
    add_cache_argument,
    add_convert_color_argument,
    add_json_argument,
    create_backbones,
    open_cache,
    require_dir,
)
from facebone.cli.output import emit
from facebone.data.lfw import scan_lfw
from facebone.embeddings import embed_images, embed_user_image
from facebone.faces.detect import FaceDetector


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="compute and cache the embeddings of a data folder, or embed photos",
        description=(
            "With --data: embed every image of a data folder with each backbone, skipping "
            "cached ones. With image files: embed each photo (a face must be found)."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="image folder in LFW layout (ROOT/Name/*.jpg)")
    source.add_argument("--images", type=Path, nargs="+", metavar="IMAGE", help="photo files")
    parser.add_argument("--backbones", default="sface", help="comma-separated, e.g. sface,dlib")
    add_convert_color_argument(parser)
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    backbones = create_backbones(args.backbones)
    try:
        if args.images:
            return _embed_photos(args, backbones)
        return _embed_folder(args, backbones)
    finally:
        for backbone in backbones:
            backbone.close()


def _embed_photos(args: argparse.Namespace, backbones) -> int:
    detector = FaceDetector()
    results = {
        str(path): {
            name: vector.round(6).tolist()
            for name, vector in embed_user_image(
                path, backbones, detector, args.convert_color
            ).items()
        }
        for path in args.images
    }
    lines = [
        f"{path}: " + ", ".join(f"{name} {len(vector)}-d" for name, vector in vectors.items())
        for path, vectors in results.items()
    ]
    emit({"embeddings": results}, args.json, "\n".join(lines))
    return 0


def _embed_folder(args: argparse.Namespace, backbones) -> int:
    require_dir(args.data, "data folder")
    paths = [image.path for image in scan_lfw(args.data)]
    cache = open_cache(args)
    _, report = embed_images(args.data, paths, backbones, cache, progress=not args.json)
    result = {
        "images": report.n_images,
        "cached": report.n_cached,
        "computed": report.n_computed,
        "no_face_fallback": report.n_fallback,
        "backbones": [b.name for b in backbones],
        "cache": str(cache.root),
    }
    text = (
        f"{report.n_images} images: {report.n_cached} from cache, {report.n_computed} computed "
        f"({report.n_fallback} without a detected face used the centred crop); cache {cache.root}"
    )
    emit(result, args.json, text)
    return 0
