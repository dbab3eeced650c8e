"""Model extraction: a surrogate verifier trained on the target's answers (surrogate.py)."""
