"""Shared output helpers: machine-readable JSON on stdout, human text otherwise."""

import json
import sys
from typing import Any


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    """Print `result` as JSON when asked, else the human-readable `text`."""
    if as_json:
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(text)
