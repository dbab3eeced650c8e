"""The threats besides membership, measured against one trained target: model inversion and
attribute inference from a stolen template store or through the service, and model extraction
at a query budget. One module per family (`inversion.py`, `attribute.py`, `extraction.py`),
each a function `evaluate(spec, target, context) -> list[ThreatFigure]`; `base.py` holds what
they share and `evaluate_threat` picks the family's module; `stolen.py` says what a thief reads
from a stolen store under each template protection; `options.py` declares each family's study
options (read by the study config, imported without torch).
"""
