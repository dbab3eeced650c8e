"""Model extraction against one target: a surrogate verifier trained on the service's answers
to the attacker's own pairs, at each query budget (`surrogate`).

The headline is fidelity on the enrolled people's pairs, which the attacker never asked: the
share of pairs the copy decides as the target does. Its chance level is what a copy that
learned only the target's base rate gets (always its more frequent decision). There is no
goal: copying a verifier is cheap whenever it answers; the figure shows what output
hardening and query budgets change.
"""

from __future__ import annotations

import time
from typing import Any

from facebone.attacks.base import query
from facebone.attacks.extraction.surrogate import ModelExtraction
from facebone.experiments.threats.base import ThreatContext, ThreatFigure, images_of
from facebone.experiments.threats.options import option_values

# The attacker's own public backbone, on which the surrogate is trained.
SURROGATE_BACKBONE = "sface"


def evaluate(spec: Any, target: Any, context: ThreatContext) -> list[ThreatFigure]:
    options = option_values("extraction", dict(spec.options))
    answer = target.query_fn(context.root)
    own = context.embedders.get([SURROGATE_BACKBONE])
    images = images_of([*context.attacker, *context.enrolled])
    embeddings = own.dataset(context.root, images)[SURROGATE_BACKBONE]
    decisions = query(answer, context.enrolled) >= 0.5
    base_rate = float(max(decisions.mean(), 1.0 - decisions.mean()))
    figures = []
    for budget in sorted(set(options["budgets"])):
        started = time.perf_counter()
        extraction = ModelExtraction(budget, seed=context.seed)
        extraction.fit(answer, embeddings, context.attacker)
        measured = extraction.evaluate(answer, embeddings, context.enrolled)
        figures.append(
            ThreatFigure(
                attack=spec.name,
                setting=f"budget {budget}",
                metric="fidelity",
                value=measured["fidelity"],
                chance=base_rate,
                goal=None,
                n_targets=len(context.enrolled),
                seconds=time.perf_counter() - started,
                metrics={**measured, "queries": len(extraction.queries_)},
            )
        )
    return figures
