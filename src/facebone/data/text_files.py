"""Reading the text files users point us at (pair lists, dataset annotations)."""

from pathlib import Path

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
