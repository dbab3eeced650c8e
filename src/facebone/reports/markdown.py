"""The Markdown summary: the same sections and tables as the HTML file, its figures as PNG
files beside it (linked by name)."""

from __future__ import annotations

from facebone.reports.document import Block, Figure, Report, Table


def _cell(text: str) -> str:
    # A `|` would end the cell and a line break the row.
    return " ".join(text.split()).replace("|", "\\|")


def _table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, table.header)) + " |"]
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in table.rows]
    return lines


def _block(block: Block) -> list[str]:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return [f"![{_cell(block.caption)}]({block.name})"]
    return [block]


def render_markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    for text in report.intro:
        lines += [text, ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += [*_block(block), ""]
    return "\n".join(lines)
