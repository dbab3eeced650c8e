"""`facebone bench`: images per second of each backbone on this machine."""

import argparse
import os
import platform

from facebone.benchmark import bench_backbone, bench_sface_onnxruntime
from facebone.cli.common import add_data_argument, add_json_argument, create_backbones, require_dir
from facebone.cli.output import emit
from facebone.data.lfw import scan_lfw
from facebone.errors import FaceBoneError
from facebone.faces.detect import FaceDetector


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure backbone throughput",
        description="Images per second per backbone, end to end and model only, without cache.",
    )
    add_data_argument(parser)
    parser.add_argument("--backbones", default="sface,dlib", help="comma-separated backbones")
    parser.add_argument("--images", type=int, default=200, help="images to time (default 200)")
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    require_dir(args.data, "data folder")
    if args.images < 1:
        raise FaceBoneError("--images must be at least 1")
    paths = [image.path for image in scan_lfw(args.data)][: args.images]
    detector = FaceDetector()
    results = {}
    for backbone in create_backbones(args.backbones):
        try:
            results[backbone.name] = bench_backbone(backbone, args.data, paths, detector)
        finally:
            backbone.close()
        if backbone.name == "sface":
            speed = bench_sface_onnxruntime(args.data, paths, detector)
            results["sface"]["model_images_per_s_onnxruntime"] = speed
    machine = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    lines = [
        f"{name}: {r['end_to_end_images_per_s']} images/s end to end, "
        f"{r['model_images_per_s']} model only (batch {r['batch_size']})"
        for name, r in results.items()
    ]
    emit({"backbones": results, "machine": machine}, args.json, "\n".join(lines))
    return 0
