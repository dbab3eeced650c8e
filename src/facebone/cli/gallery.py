"""`facebone gallery ...`: enrol people under opaque ids, then verify (1:1) and identify (1:N)
photos against them, list them, and delete them (with `--verify`, proven gone from the model
too).

A gallery belongs to one trained model and its key file: every command but `list` loads them,
and the gallery refuses another model or key. Names are the caller's business: the gallery
knows a person only by the id `enroll` prints. Identification answers that id or "no match",
never a score.
"""

import argparse
import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from facebone.atomic import is_inside
from facebone.cli.common import (
    add_convert_color_argument,
    add_json_argument,
    add_key_file_argument,
    load_model,
    refuse_key_inside,
)
from facebone.cli.output import emit
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from facebone.gallery.gallery import Gallery

STORE_HELP = (
    "the gallery: a SQLite file, or a postgresql:// URL of a server with pgvector (leave the "
    "password out of the URL: libpq reads PGPASSWORD or ~/.pgpass)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    gallery = subparsers.add_parser(
        "gallery",
        help="enrol people, then verify and identify photos against them",
        description=(
            "A gallery of enrolled people (opaque ids, their protected templates) for one "
            "trained model: create it, enroll photos, identify a photo (1:N) or verify it "
            "against one subject (1:1), list and delete subjects."
        ),
    )
    actions = gallery.add_subparsers(dest="gallery_command", required=True, metavar="ACTION")
    _action(actions, "create", "create an empty gallery for a model", _create)
    enroll = _action(
        actions,
        "enroll",
        "enrol photos of one person; prints the subject's id",
        _enroll,
        photos="+",
    )
    enroll.add_argument(
        "--subject", help="add the photos to this enrolled subject instead of a new one"
    )
    _action(actions, "identify", "who in the gallery is this? the id, or no match", _identify, "")
    verify = _action(
        actions, "verify", "is this photo the enrolled subject? (1:1)", _verify, photos=""
    )
    verify.add_argument("--subject", required=True, help="the enrolled subject's id")
    listing = actions.add_parser(
        "list",
        help="the enrolled subjects: id, faces, when enrolled",
        description="List the subjects of a gallery (needs no model).",
    )
    listing.add_argument("--store", required=True, help=STORE_HELP)
    add_json_argument(listing)
    listing.set_defaults(handler=_list)
    delete = _action(actions, "delete", "delete a subject and its templates", _delete)
    delete.add_argument("--subject", required=True, help="the enrolled subject's id")


def _action(
    actions: argparse._SubParsersAction, name: str, text: str, handler, photos: str | None = None
) -> argparse.ArgumentParser:
    """An action that loads the model: --store, --model, --key-file, --json; `photos`: "+" for
    one or more photos, "" for exactly one, None for none."""
    parser = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    parser.add_argument("--store", required=True, help=STORE_HELP)
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    if photos is not None:
        if photos:
            parser.add_argument("photos", type=Path, nargs="+", metavar="PHOTO", help="photos")
        else:
            parser.add_argument("photo", type=Path, metavar="PHOTO", help="the photo")
        add_convert_color_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=handler)
    return parser


def refuse_store_inside(store: str, flag: str, model: Path) -> None:
    """A gallery file inside the model folder is refused: the folder is replaced whole when
    the model is retrained (erasure), and the gallery would go with it."""
    from facebone.gallery.store import is_postgres

    if not is_postgres(store) and is_inside(store, model):
        raise FaceBoneError(
            f"{flag} {store} is inside --model {model}: keep the gallery outside the model folder"
        )


def _check(args: argparse.Namespace, photos: list[Path] = ()) -> None:
    """Options and files, before the model loads."""
    refuse_key_inside(args.key_file, "--key-file", args.model, "--model")
    refuse_store_inside(args.store, "--store", args.model)
    for photo in photos:
        if not photo.is_file():
            raise FaceBoneError(f"{photo}: no such file")


@contextmanager
def _opened(args: argparse.Namespace, create: bool = False) -> Iterator["Gallery"]:
    """The gallery of `--store` with the model of `--model` (and its key file)."""
    from facebone.gallery.gallery import Gallery

    # A person's photos are never cached.
    system = load_model(args, cache=None, progress=False)
    try:
        with (Gallery.create if create else Gallery.open)(args.store, system, args.model) as made:
            yield made
    finally:
        system.embedder_.close()


def _create(args: argparse.Namespace) -> int:
    _check(args)
    with _opened(args, create=True) as gallery:
        meta = gallery.store.meta
    protection = meta.protection or "none (plain templates)"
    emit(
        {"protection": meta.protection, "backbones": sorted(meta.backbones)},
        args.json,
        f"gallery created: backbones {', '.join(sorted(meta.backbones))}, template "
        f"protection {protection}",
    )
    return 0


def _enroll(args: argparse.Namespace) -> int:
    _check(args, args.photos)
    with _opened(args) as gallery:
        subject = gallery.enroll(args.photos, args.subject, args.convert_color)
    # The id alone on stdout, so that `ID=$(facebone gallery enroll ...)` works.
    emit({"subject": subject, "photos": len(args.photos)}, args.json, subject)
    return 0


def _identify(args: argparse.Namespace) -> int:
    _check(args, [args.photo])
    with _opened(args) as gallery:
        subject = gallery.identify(args.photo, args.convert_color).subject
    emit({"match": subject is not None, "subject": subject}, args.json, subject or "no match")
    return 0


def _verify(args: argparse.Namespace) -> int:
    _check(args, [args.photo])
    with _opened(args) as gallery:
        same = gallery.verify(args.subject, args.photo, args.convert_color)
    emit({"same": same}, args.json, "same person" if same else "different people")
    return 0


def _list(args: argparse.Namespace) -> int:
    from facebone.gallery.store import open_store

    with open_store(args.store) as store:
        subjects = store.subjects()
    rows = [
        {"subject": subject.id, "faces": subject.faces, "created": subject.created}
        for subject in subjects
    ]
    lines = [
        f"{subject.id}  {subject.faces} face{'s' * (subject.faces != 1)}  enrolled "
        f"{datetime.datetime.fromtimestamp(subject.created).isoformat(timespec='seconds')}"
        for subject in subjects
    ]
    emit({"subjects": rows}, args.json, "\n".join(lines) or "no subjects")
    return 0


def _delete(args: argparse.Namespace) -> int:
    _check(args)
    with _opened(args) as gallery:
        faces = gallery.delete(args.subject)
    emit(
        {"subject": args.subject, "faces_deleted": faces},
        args.json,
        f"deleted subject {args.subject} and its {faces} face{'s' * (faces != 1)}",
    )
    return 0
