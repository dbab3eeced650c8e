"""Photos that people send to the web demo and the REST API: limits, checks, a private folder.

An upload is written only inside a temporary folder that is deleted as soon as the request (API)
or the page run (demo) that needed it ends. It never reaches the embedding cache: uploads are
embedded through `Embedder.photo`, which does not cache, or by the demo's attack lab, whose
cache is read-only.
"""

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from PIL import Image, UnidentifiedImageError

from facebone.errors import InvalidImageError
from facebone.faces.image import DAMAGED_IMAGE_ERRORS, PHOTO_FORMAT_NAMES, open_photo

# A phone's best JPEG is 3-8 MB; more is not a photo anyone needs to verify a face.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Stricter than the 64 MP allowed for local files: a server decodes uploads in its own memory
# for strangers, and 20 MP (about 60 MB decoded) is more than any face needs.
MAX_UPLOAD_PIXELS = 20_000_000


class UploadTooLargeError(InvalidImageError):
    """An upload over the size or pixel limit."""


def check_upload(data: bytes, name: str) -> None:
    """Refuse an empty, oversized or non-image upload before anything decodes its pixels."""
    if not data:
        raise InvalidImageError(f"{name}: the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLargeError(
            f"{name}: the file is {len(data) / 1e6:.1f} MB; uploads are limited to "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
        )
    try:
        with open_photo(data) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        # PIL refuses, while reading the header, images far over its own pixel limit.
        raise UploadTooLargeError(
            f"{name}: the image declares far more than "
            f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels, the limit of uploads"
        ) from None
    except (UnidentifiedImageError, *DAMAGED_IMAGE_ERRORS):
        raise InvalidImageError(f"{name}: not an image file ({PHOTO_FORMAT_NAMES})") from None
    if width * height > MAX_UPLOAD_PIXELS:
        raise UploadTooLargeError(
            f"{name}: the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"uploads are limited to {MAX_UPLOAD_PIXELS // 1_000_000} megapixels"
        )


class UploadFolder:
    """A private temporary folder (mode 0700) for uploads, deleted with everything in it on exit.

    Files get generated names: a user's file name never becomes a path.
    """

    def __enter__(self) -> "UploadFolder":
        self.path = Path(tempfile.mkdtemp(prefix="facebone-upload-"))
        self._count = 0
        return self

    def save(self, data: bytes, name: str) -> Path:
        """Check `data` (see `check_upload`) and write it to a new file of this folder."""
        check_upload(data, name)
        self._count += 1
        path = self.path / f"upload-{self._count}"
        path.write_bytes(data)
        return path

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
