"""Write a report: `NAME.html` (self-contained), `NAME.md` beside it and the Markdown's
figures as `NAME-<figure>.png`. Every file is written atomically, and none that exists is
replaced unless `force` is given; all are checked before the first is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from facebone.atomic import check_writable, write_bytes_atomic, write_text_atomic
from facebone.errors import FaceBoneError
from facebone.reports.document import Figure, Report, Section
from facebone.reports.html import render_html
from facebone.reports.markdown import render_markdown


class ReportExists(FaceBoneError):
    """Some of a report's files exist already (`paths`), and `force` was not given."""

    def __init__(self, paths: list[Path]) -> None:
        shown = ", ".join(map(str, paths[:3])) + (" and more" if len(paths) > 3 else "")
        verb = "exists" if len(paths) == 1 else "exist"
        super().__init__(f"{shown} already {verb}; write elsewhere or pass force=True")
        self.paths = paths


def check_report_path(out: Path) -> Path:
    if out.suffix.lower() not in (".html", ".htm"):
        raise FaceBoneError(f"the report {out} must be an .html file")
    return out


def report_files(report: Report, out: Path) -> tuple[Path, Path, list[Path]]:
    """The HTML, the Markdown and the figure paths that `write_report` writes."""
    check_report_path(out)
    figures = [out.with_name(f"{out.stem}-{f.name}") for f in report.figures()]
    return out, out.with_suffix(".md"), figures


def _prefixed(report: Report, prefix: str) -> Report:
    """`report` with each figure named as its file beside the Markdown."""

    def block(b):
        return replace(b, name=prefix + b.name) if isinstance(b, Figure) else b

    sections = tuple(Section(s.title, tuple(map(block, s.blocks))) for s in report.sections)
    return replace(report, sections=sections)


def write_report(report: Report, out: str | Path, force: bool = False) -> list[Path]:
    """Write `report` as `out` (HTML) and its Markdown summary; the paths written."""
    out = Path(out)
    html_path, markdown_path, figure_paths = report_files(report, out)
    paths = [html_path, markdown_path, *figure_paths]
    if not force:
        taken = [p for p in paths if p.exists() or p.is_symlink()]
        if taken:
            raise ReportExists(taken)
    for path in paths:
        if path.is_dir():
            raise FaceBoneError(f"{path} is a folder, not a report file")
    check_writable(html_path, "report")
    named = _prefixed(report, f"{out.stem}-")
    for figure, path in zip(named.figures(), figure_paths, strict=True):
        write_bytes_atomic(path, figure.png)
    write_text_atomic(markdown_path, render_markdown(named))
    write_text_atomic(html_path, render_html(report))
    return paths
