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
    parser.add_argument(
        "--backbones", default="sface", help="comma-separated backbones, e.g. sface,dlib"
    )
    parser.add_argument(
        "--face",
        type=int,
        default=1,
        help="with --images: which face of a photo with several (1: the one covering the "
        "centre, else the largest)",
    )
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
    from facebone.embeddings import embed_user_image
    from facebone.faces.detect import FaceDetector

    detector = FaceDetector()
    results = {
        str(path): {
            name: vector.round(6).tolist()
            for name, vector in embed_user_image(
                path, backbones, detector, args.convert_color, args.face
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
    from facebone.data.lfw import scan_lfw
    from facebone.embeddings import embed_images

    require_dir(args.data, "data folder")
    paths = [image.path for image in scan_lfw(args.data)]
    cache = open_cache(args)
    _, report = embed_images(args.data, paths, backbones, cache, progress=not args.json)
    per_backbone = {
        name: {"cached": report.n_images - computed, "computed": computed}
        for name, computed in report.computed_by_backbone.items()
    }
    result = {
        "images": report.n_images,
        "cached": report.n_cached,
        "computed": report.n_computed,
        "no_face_fallback": report.n_fallback,
        "backbones": per_backbone,
        "cache": str(cache.root),
    }
    lines = [f"{report.n_images} images; cache {cache.root}"]
    lines += [
        f"{name}: {counts['cached']} from cache, {counts['computed']} computed"
        for name, counts in per_backbone.items()
    ]
    if report.n_fallback:
        lines.append(f"{report.n_fallback} without a detected face used the centred crop")
    text = "\n".join(lines)
    emit(result, args.json, text)
    return 0
