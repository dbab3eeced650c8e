"""Errors a user can act on.

Anything raised as a `FaceBoneError` is printed by the CLI as one line on stderr with exit
code 2; anything else is a bug and keeps its traceback.
"""


class FaceBoneError(Exception):
    """A problem with the user's input, files or configuration."""


class InvalidImageError(FaceBoneError):
    """The file is not a usable image (unreadable, not an image, too small or too large)."""


class NoFaceError(FaceBoneError):
    """No face was found in an image where one is required."""
