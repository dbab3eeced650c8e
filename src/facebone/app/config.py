"""What the demo was started with: `facebone demo` passes it to the Streamlit script's argv."""

import argparse
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ATTACKS = ("rule-based", "label-only", "lira", "blackbox-gb")


@dataclass(frozen=True)
class DemoConfig:
    """`model` answers on the verification page; `default_model` says the demo trained it.

    `data` (LFW layout) feeds the pick-from-data lists and the membership page's systems,
    trained into `workdir`; `results` is an experiment results folder for the report pages;
    `gallery` (a SQLite file or postgresql:// URL) of `model`, with its `key_file` when the
    model protects templates, feeds the enrolment and search page.
    """

    model: Path | None = None
    default_model: bool = False
    data: Path | None = None
    results: Path | None = None
    workdir: Path | None = None
    cache: Path | None = None
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    n_shadows: int = 4
    gallery: str | None = None
    key_file: Path | None = None

    def to_argv(self) -> list[str]:
        argv = []
        for name in ("model", "data", "results", "workdir", "cache", "gallery", "key_file"):
            value = getattr(self, name)
            if value is not None:
                argv += [f"--{name.replace('_', '-')}", str(value)]
        if self.default_model:
            argv.append("--default-model")
        return [*argv, "--attacks", ",".join(self.attacks), "--n-shadows", str(self.n_shadows)]

    @classmethod
    def from_argv(cls, argv: list[str]) -> "DemoConfig":
        parser = argparse.ArgumentParser(prog="facebone-demo")
        for name in ("model", "data", "results", "workdir", "cache"):
            parser.add_argument(f"--{name}", type=Path)
        parser.add_argument("--gallery")
        parser.add_argument("--key-file", type=Path)
        parser.add_argument("--default-model", action="store_true")
        parser.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS))
        parser.add_argument("--n-shadows", type=int, default=4)
        args = parser.parse_args(argv)
        return cls(
            model=args.model,
            default_model=args.default_model,
            data=args.data,
            results=args.results,
            workdir=args.workdir,
            cache=args.cache,
            attacks=tuple(args.attacks.split(",")),
            n_shadows=args.n_shadows,
            gallery=args.gallery,
            key_file=args.key_file,
        )
