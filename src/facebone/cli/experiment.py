"""Placeholder until the experiment commands land: this file is replaced by them."""


def register(subparsers) -> None:
    return None
