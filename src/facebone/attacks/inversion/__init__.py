"""Model inversion: face images back from leaked templates.

base.py (the contract and aligned faces), decoder.py ("decoder"), optimise.py ("optimise"),
blackbox.py ("blackbox", score-only search), reconstruction.py (SAR and SSIM scoring, grids),
run.py (data of one run), bench.py (what `facebone bench --inversion` measures).
"""
