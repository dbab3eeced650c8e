"""Images the web tests send: real LFW faces, and the bad inputs a server must refuse."""

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

POWELL = ("Colin_Powell/Colin_Powell_0009.jpg", "Colin_Powell/Colin_Powell_0011.jpg")
BLAIR = "Tony_Blair/Tony_Blair_0005.jpg"
BLAIR_OTHER = "Tony_Blair/Tony_Blair_0012.jpg"


def encode(image: Image.Image, kind: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def gray_face(lfw_root: Path) -> bytes:
    return encode(Image.open(lfw_root / BLAIR).convert("L"))


def no_face() -> bytes:
    return encode(Image.new("RGB", (200, 200), (128, 128, 128)))


def too_many_pixels() -> bytes:
    """5000 x 4200 = 21 megapixels, a few kB as PNG: over the 20-megapixel upload limit."""
    return encode(Image.new("RGB", (5000, 4200)))


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that declares a huge image but holds no pixels: what a bomb looks like."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def two_faces(lfw_root: Path) -> bytes:
    """Blair on the left, Powell on the right, side by side in one photo."""
    left, right = Image.open(lfw_root / BLAIR), Image.open(lfw_root / POWELL[0])
    both = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    both.paste(left, (0, 0))
    both.paste(right, (left.width, 0))
    return encode(both, "JPEG", quality=95)


def large_face(lfw_root: Path, side: int = 3500) -> bytes:
    """An LFW face enlarged to `side` x `side`: slow enough to decode to fill a server."""
    return encode(Image.open(lfw_root / BLAIR).resize((side, side)), "JPEG", quality=90)
