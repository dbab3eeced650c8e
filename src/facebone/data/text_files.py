"""Reading the text files users point us at (pair lists, dataset annotations) and the JSON
documents FaceBone keeps on disk (which a user may edit)."""

import json
from pathlib import Path
from typing import Any

from facebone.errors import FaceBoneError


def read_text(path: Path, what: str) -> str:
    """The file's UTF-8 text, without the byte-order mark some editors put first; a missing or
    unreadable file is one sentence naming `what`."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FaceBoneError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise FaceBoneError(f"{what} {path} cannot be read ({error})") from None


class UnreadableJSON(json.JSONDecodeError):
    """A document `json.loads` cannot read for another reason than its syntax: it says why,
    without the line and column of a syntax error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "", 0)

    def __str__(self) -> str:
        return self.msg


def parse_json(text: str | bytes) -> Any:
    """`json.loads`, where every document it cannot read raises `json.JSONDecodeError` (a
    ValueError): also nesting deeper than Python's recursion limit and integers of more
    than 4,300 digits, which `json.loads` raises as RecursionError and a bare ValueError
    and a reader expecting JSON errors would let through as a traceback."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise UnreadableJSON("the document nests too deeply") from None
    except UnicodeDecodeError as error:
        raise UnreadableJSON(f"not UTF-8 text ({error.reason})") from None
    except ValueError:
        raise UnreadableJSON("it holds a number too long to read") from None
