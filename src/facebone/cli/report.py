"""`facebone report RESULTS_DIR`: the results of a study, an audit or a comparison as one
self-contained HTML file and a Markdown summary."""

import argparse
from pathlib import Path

from facebone.cli.common import add_json_argument
from facebone.cli.output import emit
from facebone.errors import FaceBoneError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="render a results folder as an HTML report and a Markdown summary",
        description=(
            "Read the results of `facebone study run`, `facebone audit` or `facebone "
            "experiment compare` and write one self-contained HTML file (figures inlined) and a "
            "Markdown summary beside it (same stem, .md, with its figures as PNG files): "
            "verdict, utility, privacy per attack and level with the chance bound, ROC curves, "
            "the privacy-utility frontier, inversion grids and the original prototype's figures."
        ),
    )
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR", help="results folder")
    parser.add_argument(
        "--out", type=Path, help="the HTML file to write (default: RESULTS_DIR/report.html)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace report files that already exist"
    )
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from facebone.reports.output import ReportExists
    from facebone.reports.sources import write_folder_report

    try:
        written, _ = write_folder_report(args.results, args.out, args.force)
    except ReportExists as error:
        message = str(error).replace("write elsewhere or pass force=True", "pass --force")
        raise FaceBoneError(message) from None
    emit({"files": [str(p) for p in written]}, args.json, f"wrote {written[0]} and {written[1]}")
    return 0
