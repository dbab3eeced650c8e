"""Read LFW in its own layout, `ROOT/<Person_Name>/<Person_Name>_<NNNN>.jpg`.

Identity is the folder name. The same code reads the shared 2,057-image subset and a full
LFW download.
"""

from dataclasses import dataclass
from pathlib import Path

from facebone.errors import FaceBoneError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class FaceImage:
    """One dataset image: its path relative to the data root, and whose face it is."""

    path: str
    identity: str


def scan_lfw(root: str | Path) -> list[FaceImage]:
    """All images under `root`, sorted, with the person folder as identity."""
    root = Path(root)
    if not root.is_dir():
        raise FaceBoneError(f"data folder {root} does not exist")
    images = [
        FaceImage(path=f"{person.name}/{file.name}", identity=person.name)
        for person in sorted(p for p in root.iterdir() if p.is_dir())
        for file in sorted(person.iterdir())
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file()
    ]
    if not images:
        raise FaceBoneError(
            f"{root} holds no images in LFW layout (ROOT/Person_Name/Person_Name_0001.jpg)"
        )
    return images
