"""The parts privacy studies are made of (`facebone.studies` runs them).

`defenses.py` names the deployable configurations, `regimes.py` the training recipes,
`dp_tuning.py` tunes DP-SGD on the attacker's pairs, `evaluation.py` trains, measures and
attacks one target, `execution.py` runs such jobs here or in worker processes, `runner.py`
holds what studies and experiments share, `statistics.py` gives means over seeds and chance
bands, `verdict.py` judges the goal, and `canaries.py` audits planted canaries.
"""

from facebone.experiments.defenses import (
    DEFENSES,
    Defense,
    create_defense,
    get_defense,
    list_defenses,
    register_defense,
)
from facebone.experiments.regimes import (
    REGIMES,
    Regime,
    create_regime,
    get_regime,
    list_regimes,
    register_regime,
)
from facebone.experiments.runner import save_results
from facebone.experiments.verdict import GOAL

__all__ = [
    "DEFENSES",
    "GOAL",
    "REGIMES",
    "Defense",
    "Regime",
    "create_defense",
    "create_regime",
    "get_defense",
    "get_regime",
    "list_defenses",
    "list_regimes",
    "register_defense",
    "register_regime",
    "save_results",
]
