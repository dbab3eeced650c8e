"""Privacy experiments: defenses compared on the same splits, and where leakage appears.

`defenses.py` names the deployable configurations, `regimes.py` the training recipes,
`runner.py` trains, measures and attacks each (regime, defense), `leakage.py` maps the
undefended nn predictor over training-set sizes and lengths, and `report.py` writes the
markdown report and plots.
"""

from facebone.experiments.defenses import DEFENSES, Defense, get_defense, list_defenses
from facebone.experiments.regimes import REGIMES, Regime, get_regime, list_regimes
from facebone.experiments.runner import GOAL, compare, save_results

__all__ = [
    "DEFENSES",
    "GOAL",
    "REGIMES",
    "Defense",
    "Regime",
    "compare",
    "get_defense",
    "get_regime",
    "list_defenses",
    "list_regimes",
    "save_results",
]
