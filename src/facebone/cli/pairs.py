"""`facebone pairs`: write the identity-disjoint pair protocol, or check a pairs CSV.

The split's seed is drawn from the operating system's entropy unless given: a fixed default
(or any small number) lets anyone who has the public data rebuild the split, and so the
members, by trying seeds; the drawn seed is kept beside the CSVs, readable by its owner only."""

import argparse
import secrets
from collections import Counter
from pathlib import Path

from facebone.atomic import check_outside_data, check_writable
from facebone.cli.common import (
    add_data_argument,
    add_force_argument,
    add_json_argument,
    require_dir,
    seed_value,
)
from facebone.cli.output import emit
from facebone.data.pairs import DEFAULT_FRACTIONS, ROLES
from facebone.errors import FaceBoneError

SEED_FILE = "seed.txt"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pairs",
        help="make identity-disjoint pair lists, or check a pairs CSV",
        description=(
            "Write target_train.csv (members), target_test.csv (non-members and the utility "
            "test) and attacker.csv (the attacker's own people), disjoint by identity and "
            "balanced, or with --check report which rows of a pairs CSV can be used."
        ),
    )
    add_data_argument(parser)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="folder for the CSV files")
    mode.add_argument("--check", type=Path, metavar="CSV", help="pairs CSV to check against --data")
    parser.add_argument(
        "--seed",
        type=seed_value,
        help="seed of the split, for a protocol others must reproduce (a study's); by default "
        f"a seed is drawn from the operating system's entropy and written to OUT/{SEED_FILE}, "
        "readable by you only, so nobody can rebuild who is a member from public information",
    )
    parser.add_argument(
        "--fractions",
        default=",".join(str(f) for f in DEFAULT_FRACTIONS),
        help=f"share of identities per role {','.join(ROLES)} (default %(default)s)",
    )
    parser.add_argument(
        "--max-positives-per-identity",
        type=int,
        default=20,
        help="cap on same-person pairs per person, so a few people do not dominate "
        "(default %(default)s)",
    )
    add_force_argument(parser, "the pair lists")
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from facebone.atomic import write_private, write_text_atomic
    from facebone.data.lfw import scan_lfw
    from facebone.data.pairs import make_protocol, pairs_csv_text

    require_dir(args.data, "data folder")
    if args.check is not None:
        return _check(args)
    check_writable(args.out, "--out", folder=True)
    check_outside_data(args.out, args.data, "--out")
    try:
        fractions = tuple(float(part) for part in args.fractions.split(","))
    except ValueError:
        raise FaceBoneError(
            f"--fractions {args.fractions!r}: give numbers like 0.4,0.3,0.3"
        ) from None
    drawn = args.seed is None
    seed = secrets.randbits(64) if drawn else args.seed
    protocol = make_protocol(scan_lfw(args.data), seed, fractions, args.max_positives_per_identity)
    texts = {args.out / f"{role}.csv": pairs_csv_text(pairs) for role, pairs in protocol.items()}
    # Rerunning with the same options rewrites the same files; other pairs would silently
    # change what models trained on these files count as their members.
    changed = [p for p, text in texts.items() if p.is_file() and p.read_bytes() != text.encode()]
    if changed and not args.force:
        raise FaceBoneError(
            f"{changed[0]} already holds other pairs; choose another --out, or pass --force "
            "to replace it"
        )
    for path, text in texts.items():
        write_text_atomic(path, text)
    if drawn:
        write_private(args.out / SEED_FILE, f"{seed}\n".encode(), overwrite=True, what="seed file")
    summary = {}
    for role, pairs in protocol.items():
        labels = Counter(pair.label for pair in pairs)
        summary[role] = {"pairs": len(pairs), "positives": labels[1], "negatives": labels[0]}
    lines = [
        f"{role}.csv: {s['pairs']} pairs ({s['positives']} same)" for role, s in summary.items()
    ]
    if drawn:
        lines.append(f"seed drawn from OS entropy, kept in {args.out / SEED_FILE} (owner only)")
    shown = str(args.out / SEED_FILE) if drawn else args.seed
    emit({"out": str(args.out), "seed": shown, "files": summary}, args.json, "\n".join(lines))
    return 0


def _check(args: argparse.Namespace) -> int:
    from facebone.data.pairs import read_pairs

    pair_list = read_pairs(args.check, args.data)
    result = {
        "kept": len(pair_list.pairs),
        "skipped": len(pair_list.skipped),
        "repeated": len(pair_list.repeated),
        "positives": int(pair_list.labels.sum()),
        "skipped_rows": [{"line": line, "reason": reason} for line, reason in pair_list.skipped],
    }
    total = result["kept"] + result["skipped"]
    text = f"{args.check}: kept {result['kept']} of {total} pairs"
    if pair_list.skipped:
        text += f"; skipped {result['skipped']} whose images are missing from {args.data}"
    if pair_list.repeated:
        text += f"; {result['repeated']} repeat an earlier pair"
    emit(result, args.json, text)
    return 0
