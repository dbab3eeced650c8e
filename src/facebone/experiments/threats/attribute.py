"""Attribute inference (gender) against one target: from the templates a thief reads in the
stolen store (`attribute-template`: the stronger of a nearest-neighbour vote and a logistic
regression, trained on the thief's own labelled people, over every stored backbone), or
through the service's answers (`attribute-blackbox`: the vote of the attacker's labelled
reference photos the system calls most alike).

The headline is balanced accuracy on the enrolled people (each person weighted once), beside
the band the best of its guesses that know nothing stays under; goals: 0.55 from stolen
templates, 0.60 through the service.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from facebone.attacks.attribute.base import evaluate_attribute, prior_class
from facebone.attacks.attribute.blackbox import BlackBoxAttributeAttack
from facebone.attacks.attribute.template import CLASSIFIERS, TemplateAttributeAttack
from facebone.data.attributes import GENDER, load_attribute_labels
from facebone.experiments.threats.base import (
    ThreatContext,
    ThreatFigure,
    balanced_accuracy_chance,
    first_images,
    images_of,
)
from facebone.experiments.threats.options import ATTACK_SETTINGS, option_values
from facebone.experiments.threats.stolen import thief_templates

GOALS = {"stolen-store": 0.55, "service": 0.60}


@functools.cache
def _labels(root: str):
    return load_attribute_labels(root, GENDER)


@dataclass(frozen=True)
class Labelled:
    """Labelled photos of one side: paths, 0/1 labels, the person of each."""

    paths: list[str]
    labels: np.ndarray
    people: list[str]

    @classmethod
    def of(cls, labels, paths: list[str]) -> Labelled:
        """The labelled images among `paths`."""
        images, values, _ = labels.select(paths)
        return cls([i.path for i in images], values, [i.identity for i in images])


def evaluate(spec: Any, target: Any, context: ThreatContext) -> list[ThreatFigure]:
    options = option_values("attribute", dict(spec.options))
    labels = _labels(context.root)
    attacker = Labelled.of(labels, images_of(context.attacker))
    enrolled = Labelled.of(labels, first_images(images_of(context.enrolled), options["targets"]))
    prior = prior_class(attacker.labels, attacker.people)
    started = time.perf_counter()
    if spec.name == "attribute-template":
        results = {
            name: evaluate_attribute(enrolled.labels, scores, enrolled.people, prior)
            for name, scores in _from_templates(target.system, context, attacker, enrolled)
        }
    else:
        attack = BlackBoxAttributeAttack(n_references=options["references"], seed=context.seed)
        attack.fit(attacker.paths, attacker.labels, attacker.people)
        scores = attack.predict_proba(target.query_fn(context.root), enrolled.paths)
        results = {
            "service": {
                **evaluate_attribute(enrolled.labels, scores, enrolled.people, prior),
                "queries": attack.n_queries(len(enrolled.paths)),
            }
        }
    strongest = max(results, key=lambda k: results[k]["balanced_accuracy"])
    setting = ATTACK_SETTINGS[spec.name]
    positive = len({p for p, y in zip(enrolled.people, enrolled.labels, strict=True) if y == 1})
    negative = len(set(enrolled.people)) - positive
    return [
        ThreatFigure(
            attack=spec.name,
            setting=setting,
            metric="gender balanced accuracy",
            value=results[strongest]["balanced_accuracy"],
            chance=balanced_accuracy_chance(positive, negative, n_tests=len(results)),
            goal=GOALS[setting],
            n_targets=len(set(enrolled.people)),
            seconds=time.perf_counter() - started,
            metrics={"strongest": strongest, "results": results},
        )
    ]


def _from_templates(system, context, attacker: Labelled, enrolled: Labelled):
    """`(backbone/classifier, scores of the stored templates)` for each stored backbone and
    classifier, fitted on the thief's own templates."""
    table = system.embedder_.dataset(context.root, attacker.paths + enrolled.paths)
    for name in system.embedder_.names:
        own, stored = thief_templates(
            system,
            name,
            np.stack([table[name][p] for p in attacker.paths]),
            np.stack([table[name][p] for p in enrolled.paths]),
            context.seed,
        )
        for classifier in CLASSIFIERS:
            attack = TemplateAttributeAttack(classifier, seed=context.seed)
            attack.fit(own, attacker.labels, attacker.people)
            yield f"{name}/{classifier}", attack.predict_proba(stored)
