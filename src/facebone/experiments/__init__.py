"""The parts privacy studies are made of (`facebone.studies` runs them).

`defenses.py` names the deployable configurations, `regimes.py` the training recipes,
`dp_tuning.py` tunes DP-SGD on the attacker's pairs, `evaluation.py` trains, measures and
attacks one target, `execution.py` runs such jobs here or in worker processes, `runner.py`
holds what studies and experiments share, `statistics.py` gives means over seeds and chance
bands, `verdict.py` judges the goal, and `canaries.py` audits planted canaries.

Names are imported on first use (PEP 562): reading a study configuration must not load the
attacks, scikit-learn or torch.
"""

import importlib

_MODULES = {
    "DEFENSES": "facebone.experiments.defenses",
    "Defense": "facebone.experiments.defenses",
    "create_defense": "facebone.experiments.defenses",
    "get_defense": "facebone.experiments.defenses",
    "list_defenses": "facebone.experiments.defenses",
    "register_defense": "facebone.experiments.defenses",
    "REGIMES": "facebone.experiments.regimes",
    "Regime": "facebone.experiments.regimes",
    "create_regime": "facebone.experiments.regimes",
    "get_regime": "facebone.experiments.regimes",
    "list_regimes": "facebone.experiments.regimes",
    "register_regime": "facebone.experiments.regimes",
    "save_results": "facebone.experiments.runner",
    "GOAL": "facebone.experiments.verdict",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)
