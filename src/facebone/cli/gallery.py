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
    add_cache_argument,
    add_convert_color_argument,
    add_data_argument,
    add_json_argument,
    add_key_file_argument,
    load_model,
    open_cache,
    refuse_key_inside,
    require_dir,
    seed_value,
)
from facebone.cli.output import emit
from facebone.errors import FaceBoneError

if TYPE_CHECKING:
    from facebone.embeddings import EmbeddingCache
    from facebone.gallery.erasure import ErasureReport, TrainingData
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
        "enrol photos of one person (prints the subject's id), or many people with --batch",
        _enroll,
        photos="*",
    )
    enroll.add_argument(
        "--subject", help="add the photos to this enrolled subject instead of a new one"
    )
    batch = enroll.add_argument_group(
        "batch enrolment (--batch)",
        "many people, --batch-size per transaction (an encrypted gallery's transaction costs "
        "seconds whatever it holds); prints JSON {key: subject id}. With --out, the file is "
        "rewritten after every transaction, and --resume after a kill enrols only the rest, "
        "nobody twice",
    )
    batch.add_argument(
        "--batch",
        type=Path,
        metavar="MANIFEST",
        help="CSV with the header key,photo: your own key per person (never stored; a key's "
        "rows are one subject) and a photo path (relative to the manifest's folder)",
    )
    batch.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="people per transaction (default 64)",
    )
    batch.add_argument("--out", type=Path, help="write the {key: subject id} JSON here")
    batch.add_argument(
        "--resume",
        action="store_true",
        help="--out exists from an interrupted run: enrol the people it does not hold yet",
    )
    batch.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out and enrol everyone anew (people it holds get second "
        "subjects)",
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
    delete = _action(
        actions,
        "delete",
        "delete a subject's templates; with the training data, retrain the model without them",
        _delete,
    )
    delete.add_argument("--subject", required=True, help="the enrolled subject's id")
    erasure = delete.add_argument_group(
        "erasure from the model",
        "with the data the model was trained on, the training people the subject matches are "
        "found, and the model is retrained without their pairs and saved in place of --model",
    )
    add_data_argument(erasure, required=False)
    erasure.add_argument(
        "--pairs",
        type=Path,
        help="the members' pairs CSV --model was trained on (not for a model calibrated on "
        "public pairs: its members' pairs trained nothing)",
    )
    erasure.add_argument(
        "--public-pairs",
        type=Path,
        help="the public pairs CSV the model's calibration or suppression was fitted on",
    )
    erasure.add_argument(
        "--pairs-out",
        type=Path,
        help="where to write the pairs the model then records (without the person's when it "
        "was retrained): the --pairs of the next erasure; needed with --pairs",
    )
    erasure.add_argument(
        "--public-pairs-out",
        type=Path,
        help="the same for --public-pairs; needed with --public-pairs",
    )
    erasure.add_argument(
        "--force",
        action="store_true",
        help="replace --pairs-out or --public-pairs-out if they exist",
    )
    erasure.add_argument(
        "--verify",
        action="store_true",
        help="check the erasure: the saved model equals a fresh fit without the person, and "
        "a membership attack no longer tells the person from people never trained on",
    )
    erasure.add_argument("--seed", type=seed_value, default=0, help="seed of the membership check")
    add_cache_argument(erasure)


def _action(
    actions: argparse._SubParsersAction, name: str, text: str, handler, photos: str | None = None
) -> argparse.ArgumentParser:
    """An action that loads the model: --store, --model, --key-file, --json; `photos`: "+" or
    "*" for photos (argparse's nargs), "" for exactly one, None for none."""
    parser = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    parser.add_argument("--store", required=True, help=STORE_HELP)
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    if photos is not None:
        if photos:
            parser.add_argument("photos", type=Path, nargs=photos, metavar="PHOTO", help="photos")
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
def _opened(
    args: argparse.Namespace, create: bool = False, cache: "EmbeddingCache | None" = None
) -> Iterator["Gallery"]:
    """The gallery of `--store` with the model of `--model` (and its key file); `cache` for
    the embeddings of data-set photos only: a person's photos are never cached."""
    from facebone.gallery.gallery import Gallery

    system = load_model(args, cache=cache, progress=False)
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
    if args.batch is not None:
        return _enroll_batch(args)
    for flag in ("batch_size", "out", "resume", "force"):
        if getattr(args, flag) not in (None, False):
            raise FaceBoneError(f"--{flag.replace('_', '-')} is for --batch")
    if not args.photos:
        raise FaceBoneError("give the photos of one person, or --batch MANIFEST")
    _check(args, args.photos)
    with _opened(args) as gallery:
        subject = gallery.enroll(args.photos, args.subject, args.convert_color)
    # The id alone on stdout, so that `ID=$(facebone gallery enroll ...)` works.
    emit({"subject": subject, "photos": len(args.photos)}, args.json, subject)
    return 0


def _enroll_batch(args: argparse.Namespace) -> int:
    import json

    from facebone.cli.output import check_outputs
    from facebone.gallery.batch import (
        BATCH_SIZE,
        Journal,
        enroll_batch,
        progress_logger,
        read_manifest,
    )

    if args.photos or args.subject:
        raise FaceBoneError("--batch enrols the manifest's people: give no photos nor --subject")
    if args.resume and args.force:
        raise FaceBoneError("--resume continues --out, --force replaces it: give one")
    if args.resume and args.out is None:
        raise FaceBoneError("--resume needs --out, the file of the interrupted run")
    size = BATCH_SIZE if args.batch_size is None else args.batch_size
    if size < 1:
        raise FaceBoneError(f"--batch-size must be at least 1, got {size}")
    _check(args)
    journal = None
    if args.out is not None:
        if args.out.exists() and not (args.resume or args.force):
            raise FaceBoneError(
                f"--out {args.out} already exists: give --resume to continue the enrolment it "
                "records, or --force to replace it"
            )
        check_outputs("--out", [args.out], force=True)
        journal = Journal(args.out)
        if journal.pending_path.exists() and not (args.resume or args.force):
            raise FaceBoneError(
                f"{journal.pending_path} records an interrupted run: give --resume to finish it"
            )
    people = read_manifest(args.batch)
    with _opened(args) as gallery:
        if journal is not None and args.resume:
            journal.resume(gallery)
        elif journal is not None:
            journal.pending_path.unlink(missing_ok=True)  # --force: the old run is let go
        recorded = journal.done if journal is not None else {}
        done = enroll_batch(
            gallery,
            people,
            size,
            args.convert_color,
            journal,
            progress_logger(sum(p.key not in recorded for p in people)),
        )
    if journal is None:
        print(json.dumps(done, indent=1, sort_keys=True))
        return 0
    if not journal.path.exists():  # nothing left to enrol: still leave the answer
        journal.commit({})
    emit(
        {"people": len(done), "out": str(args.out)},
        args.json,
        f"{len(done)} people enrolled; their subject ids are in {args.out}",
    )
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
    from facebone.data.pairs import write_pairs
    from facebone.gallery.erasure import erase_subject

    _check(args)
    training, outputs = _training_data(args)  # every flag and output checked before any work

    def keep(remaining: "TrainingData") -> None:
        for field, path in outputs.items():
            write_pairs(path, list(getattr(remaining, field)))

    cache = open_cache(args) if training is not None else None
    with _opened(args, cache=cache) as gallery:
        report = erase_subject(
            gallery,
            args.subject,
            training,
            args.model,
            None,  # the keys the model was loaded with
            args.verify,
            args.seed,
            keep,
        )
    written = {f"{field}_out": str(path) for field, path in outputs.items()}
    text = _erasure_text(report, training is not None)
    if outputs:
        text += "\nthe pairs the model now records written to " + ", ".join(written.values())
    emit({**report.to_dict(), **written}, args.json, text)
    return 0


# The pairs flags of an erasure and the flags their remaining pairs are written to.
_PAIRS_OUT = {"pairs": "pairs_out", "public_pairs": "public_pairs_out"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _training_data(args: argparse.Namespace) -> tuple["TrainingData | None", dict[str, Path]]:
    """The `TrainingData` of --data, --pairs and --public-pairs as the model records it
    (`erasure.training_data`), checked against its SHA-256 where that needs no matching, and
    the files the remaining pairs go to ({TrainingData field: path}); (None, {}) without
    --data. Everything is checked here, before the model loads."""
    from facebone.atomic import check_outside_data
    from facebone.cli.output import check_outputs
    from facebone.data.pairs import read_pairs
    from facebone.gallery.erasure import recorded_training_data, training_data
    from facebone.gallery.store import is_postgres
    from facebone.system.model_dir import read_config

    if args.data is None:
        for name in ("pairs", "public_pairs", *_PAIRS_OUT.values(), "verify"):
            if getattr(args, name):
                raise FaceBoneError(
                    f"{_flag(name)} needs --data and the pairs the model was trained on "
                    "(--pairs, or --public-pairs)"
                )
        return None, {}
    if args.pairs is None and args.public_pairs is None:
        raise FaceBoneError(
            "--data needs the pairs the model was trained on (--pairs, --public-pairs)"
        )
    require_dir(args.data, "data folder")
    # The model is rewritten in place: it must not lie among the photos.
    check_outside_data(args.model, args.data, "--model")
    if not is_postgres(args.store):
        check_outside_data(args.store, args.data, "--store")
    given = {
        name: None
        if getattr(args, name) is None
        else read_pairs(getattr(args, name), args.data).pairs
        for name in _PAIRS_OUT
    }
    config = read_config(args.model)
    training = training_data(config, args.data, given["pairs"], given["public_pairs"])
    outputs = {}
    for name, out in _PAIRS_OUT.items():
        path = getattr(args, out)
        if path is not None and given[name] is None:
            raise FaceBoneError(f"{_flag(out)} goes with {_flag(name)}")
        if given[name] is not None and path is None:
            raise FaceBoneError(
                f"{_flag(name)} needs {_flag(out)}: the model may be retrained without the "
                "person, and the next erasure is checked against the pairs that remain"
            )
        if path is not None:
            check_outputs(_flag(out), [path], args.force, args.data)
            if is_inside(path, args.model):
                raise FaceBoneError(
                    f"{_flag(out)} {path} is inside --model {args.model}, which a retraining "
                    "replaces whole; write it elsewhere"
                )
            if not is_postgres(args.store) and Path(path).resolve() == Path(args.store).resolve():
                raise FaceBoneError(f"{_flag(out)} {path} is the gallery --store")
            outputs[name] = path
    if len(outputs) == 2 and outputs["pairs"].resolve() == outputs["public_pairs"].resolve():
        raise FaceBoneError("--pairs-out and --public-pairs-out are the same file")
    recorded_training_data(config, training)
    return training, outputs


def _erasure_text(report: "ErasureReport", checked: bool) -> str:
    faces = report.faces_removed
    lines = [f"deleted subject {report.subject} and its {faces} face{'s' * (faces != 1)}"]
    if not checked:
        lines.append(
            "the model was not checked for the person (give --data and its training pairs to "
            "retrain it without them)"
        )
        return "\n".join(lines)
    lines.append(
        f"training people matching the subject: {report.people_matched}; pairs removed: "
        f"{report.pairs_removed} (public: {report.public_pairs_removed})"
    )
    if report.retrained:
        lines.append(f"model retrained without them in {report.retrain_seconds:.2f} s, saved")
    if report.kept_parts_saw_person:
        lines.append(
            "the template-protection key or attribute suppression (kept, so that enrolled "
            "templates stay valid) was fitted on faces including the person's"
        )
    if report.exact_unlearning is not None:
        lines.append(
            "saved model equals a fresh fit without them: "
            f"{'yes' if report.exact_unlearning else 'NO'}"
        )
    if report.membership is not None:
        check = report.membership
        lines.append(
            f"membership attack ({check.attack}, {check.reference} never-members): p-value "
            f"{check.p_before:.3f} before, {check.p_after:.3f} after"
            + ("" if check.held is not None else " (it did not find the person before: no power)")
        )
    if report.held is not None:
        lines.append(f"erasure held: {'yes' if report.held else 'NO'}")
    return "\n".join(lines)
