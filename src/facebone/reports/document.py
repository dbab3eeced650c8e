"""A report as plain data: sections of paragraphs, tables and figures.

The HTML file and the Markdown summary are two renderings of one `Report`, so they can never
disagree on a figure. Text uses two inline marks only, `code` and **bold**; each renderer
escapes everything else, so a system or file name can never inject markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
        return cls(tuple(header), tuple(tuple(row) for row in rows))


@dataclass(frozen=True)
class Figure:
    """A PNG image; `name` is its file name beside the Markdown summary."""

    name: str
    png: bytes
    caption: str


Block = str | Table | Figure


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Report:
    title: str
    intro: tuple[str, ...] = ()
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]
