"""Name -> factory registry for backbones (timm-style)."""

import importlib
from collections.abc import Callable

from facebone.backbones.base import Backbone
from facebone.errors import FaceBoneError

BUILTIN_MODULES = (
    "facebone.backbones.sface",
    "facebone.backbones.dlib_resnet",
    "facebone.backbones.onnx_model",
    "facebone.backbones.iresnet",
)

_FACTORIES: dict[str, Callable[..., Backbone]] = {}


def register_backbone(name: str) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    def decorate(factory: Callable[..., Backbone]) -> Callable[..., Backbone]:
        _FACTORIES[name] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def list_backbones() -> list[str]:
    _load_builtins()
    return sorted(_FACTORIES)


def create_backbone(spec: str, **kwargs) -> Backbone:
    """Build a backbone from a spec: `sface`, `dlib`, `onnx:PATH` or `iresnet50:WEIGHTS`.

    The part after the first colon is the weights file for backbones that take one.
    """
    _load_builtins()
    name, _, weights = spec.partition(":")
    factory = _FACTORIES.get(name)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES))
        raise FaceBoneError(f"unknown backbone {name!r}; known backbones: {known}")
    if weights:
        kwargs["weights"] = weights
    return factory(**kwargs)
