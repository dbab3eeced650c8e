"""`facebone data ...`: fetch the public data sets the experiments run on."""

import argparse
from pathlib import Path

from facebone.cli.common import check_seconds
from facebone.cli.output import emit
from facebone.data.download import LFW_SHA256, LFW_URL, default_data_dir, download_lfw, lfw_counts


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="download data sets")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = actions.add_parser(
        "download",
        help="download and verify a data set",
        description="Download a data set, check its SHA-256 and unpack it safely.",
    )
    download.add_argument("dataset", choices=["lfw"], help="which data set")
    download.add_argument(
        "--dest",
        type=Path,
        default=None,
        help=f"folder to put it in (default: {default_data_dir()})",
    )
    download.add_argument("--url", default=LFW_URL, help="archive URL, e.g. a mirror")
    download.add_argument(
        "--sha256", default=LFW_SHA256, help="expected SHA-256 of the archive at --url"
    )
    download.add_argument("--timeout", type=float, default=60.0, help="network timeout, seconds")
    download.add_argument("--json", action="store_true", help="print the result as JSON")
    download.set_defaults(handler=_download)


def _download(args: argparse.Namespace) -> int:
    check_seconds("--timeout", args.timeout)
    dest = args.dest if args.dest is not None else default_data_dir()
    folder = download_lfw(dest, url=args.url, sha256=args.sha256, timeout=args.timeout)
    people, images = lfw_counts(folder)
    result = {"dataset": args.dataset, "path": str(folder), "people": people, "images": images}
    emit(result, args.json, f"LFW in {folder}: {people} people, {images} images")
    return 0
