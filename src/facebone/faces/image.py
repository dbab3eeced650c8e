"""Load a user's or a dataset's image into an RGB array, refusing what cannot be a face photo."""

import io
import logging
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facebone.errors import InvalidImageError

log = logging.getLogger(__name__)

# Bigger than any camera photo of today (a 48 MP phone shot passes); a 10000x10000 image does
# not, so a decompression bomb never reaches the decoder.
MAX_PIXELS = 64_000_000
# 64 megapixels stored uncompressed at 8 bits a channel take 192 MB; no image file we can
# decode needs more, so a larger file is refused before it is read.
MAX_FILE_BYTES = 256_000_000
# A face needs a few dozen pixels to be recognisable; smaller images are refused.
MIN_SIDE = 32
# The formats photos come in (PIL's JPEG opener also reads a phone's multi-picture JPEGs).
# PIL reads some forty more, none of them a photo, several rarely used and less hardened (a
# damaged DDS file raised NotImplementedError, TIFF's decoder writes to stderr): never decoded.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
PHOTO_FORMAT_NAMES = "JPEG, PNG, WebP or BMP"
# What PIL raises on a damaged file of those formats.
DAMAGED_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """Read a file, turning every OS problem into one sentence; a file over `MAX_FILE_BYTES`
    is refused by its size, before it is read."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidImageError(_too_big(path))
        with path.open("rb") as file:  # at most one byte over: a device or pipe never ends
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InvalidImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidImageError(f"{path}: is a directory, not an image") from None
    except OSError as error:
        raise InvalidImageError(f"{path}: cannot read ({error.strerror})") from None
    if not data:
        raise InvalidImageError(f"{path}: file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError(_too_big(path))
    return data


def _too_big(path: Path) -> str:
    return f"{path}: file is over {MAX_FILE_BYTES // 1_000_000} MB, too large for an image"


@contextmanager
def open_photo(data: bytes) -> Iterator[Image.Image]:
    """PIL's image of `data`, one of `PHOTO_FORMATS`, its header read and its pixels not yet.

    A damaged file's warnings (corrupt EXIF data) are silenced while it is open: the errors
    that matter are raised, and the warnings would only clutter a server's log.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
            yield image


def decode_image(data: bytes, name: str, convert_color: bool = False) -> np.ndarray:
    """Decode image bytes to an RGB uint8 array (H, W, 3).

    Grayscale and alpha images are refused unless `convert_color` is set: the backbones were
    trained on colour photos, so converting silently would hide a drop in accuracy.
    """
    try:
        with open_photo(data) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImageError(
                    f"{name}: image is too large ({width}x{height}, more than "
                    f"{MAX_PIXELS // 1_000_000} megapixels)"
                )
            if min(width, height) < MIN_SIDE:
                raise InvalidImageError(
                    f"{name}: image is too small ({width}x{height}, needs at least "
                    f"{MIN_SIDE}x{MIN_SIDE})"
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image, name, convert_color)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:
        # PIL refuses images over twice its own limit while opening, before our check runs.
        raise InvalidImageError(
            f"{name}: image is too large (more than {MAX_PIXELS // 1_000_000} megapixels)"
        ) from None
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"{name}: not a readable image file ({PHOTO_FORMAT_NAMES})"
        ) from None
    except DAMAGED_IMAGE_ERRORS as error:
        raise InvalidImageError(f"{name}: damaged image ({error})") from None


def _to_rgb(image: Image.Image, name: str, convert_color: bool) -> np.ndarray:
    bands = image.getbands()
    has_alpha = "A" in bands or "transparency" in image.info
    is_gray = image.mode in {"1", "L", "LA", "I", "I;16", "F"}
    if (has_alpha or is_gray) and not convert_color:
        what = "has an alpha channel" if has_alpha else "is grayscale"
        raise InvalidImageError(
            f"{name}: image {what}; give an RGB photo or pass --convert-color to convert it"
        )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def load_image(path: str | os.PathLike, convert_color: bool = False) -> np.ndarray:
    """Read and decode an image file to RGB uint8 (H, W, 3), with one-line errors."""
    return decode_image(read_image_bytes(path), str(path), convert_color)
