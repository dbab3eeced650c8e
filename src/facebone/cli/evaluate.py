"""`facebone evaluate`: utility of a trained system on labelled pairs."""

import argparse
from pathlib import Path

from facebone.cli.common import (
    add_cache_argument,
    add_data_argument,
    add_json_argument,
    add_key_file_argument,
    load_model,
    open_cache,
    require_dir,
)
from facebone.cli.output import emit


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a trained system on labelled pairs",
        description="Accuracy, precision, recall, F1, ROC AUC, TAR at FAR 1e-2 and 1e-3.",
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    add_key_file_argument(parser)
    add_data_argument(parser)
    parser.add_argument("--pairs", type=Path, required=True, help="test pairs CSV")
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from facebone.data.pairs import read_pairs
    from facebone.metrics import verification_metrics

    require_dir(args.data, "data folder")
    system = load_model(args, open_cache(args), progress=not args.json)
    pair_list = read_pairs(args.pairs, args.data)
    try:
        # Every answer weighted by its probability: the same figures on every run, even
        # where each query draws the backbone that answers it.
        answers, weights = system.answer_distribution(args.data, pair_list.pairs)
    finally:
        system.embedder_.close()
    metrics = verification_metrics(pair_list.labels, answers, weights=weights)
    result = {
        **metrics,
        "n_pairs": len(pair_list.pairs),
        "skipped": len(pair_list.skipped),
        "expected_over_draws": len(weights) > 1,
    }
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    lines = []
    if result["expected_over_draws"]:
        lines.append(
            f"each query draws one of {len(weights)} backbones: expected figures over the draws"
        )
    text = "\n".join(
        [
            *lines,
            f"pairs      {result['n_pairs']} ({result['skipped']} skipped)",
            f"accuracy   {metrics['accuracy']:.4f}",
            f"precision  {metrics['precision']:.4f}",
            f"recall     {metrics['recall']:.4f}",
            f"f1         {metrics['f1']:.4f}",
            f"roc auc    {metrics['auc']:.5f}",
            f"TAR@FAR=1e-2 {metrics['tar_at_far']['0.01']:.4f}",
            f"TAR@FAR=1e-3 {metrics['tar_at_far']['0.001']:.4f}",
            f"confusion  same: {tp:g} accepted, {fn:g} rejected; "
            f"different: {tn:g} rejected, {fp:g} accepted",
        ]
    )
    emit(result, args.json, text)
    return 0
