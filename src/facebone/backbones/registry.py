"""Name -> factory registry for backbones (timm-style)."""

import importlib
from collections.abc import Callable

from facebone.backbones.base import Backbone
from facebone.errors import FaceBoneError

# Each built-in family and the module that registers it (`iresnet` registers iresnet18 to
# iresnet100). Creating a backbone imports only its own module: SFace alone does not wait
# for PyTorch (iresnet) or dlib.
BUILTIN_MODULES = {
    "sface": "facebone.backbones.sface",
    "dlib": "facebone.backbones.dlib_resnet",
    "onnx": "facebone.backbones.onnx_model",
    "iresnet": "facebone.backbones.iresnet",
}

_FACTORIES: dict[str, Callable[..., Backbone]] = {}


def register_backbone(name: str) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    def decorate(factory: Callable[..., Backbone]) -> Callable[..., Backbone]:
        _FACTORIES[name] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    for module in BUILTIN_MODULES.values():
        importlib.import_module(module)


def list_backbones() -> list[str]:
    _load_builtins()
    return sorted(_FACTORIES)


def create_backbone(spec: str, **kwargs) -> Backbone:
    """Build a backbone from a spec: `sface`, `dlib`, `onnx:PATH` or `iresnet50:WEIGHTS`.

    The part after the first colon is the weights file for backbones that take one.
    """
    name, _, weights = spec.partition(":")
    family = BUILTIN_MODULES.get(name.rstrip("0123456789"))
    if name not in _FACTORIES and family:
        importlib.import_module(family)
    factory = _FACTORIES.get(name)
    if factory is None:
        known = ", ".join(list_backbones())
        raise FaceBoneError(f"unknown backbone {name!r}; known backbones: {known}")
    if weights:
        kwargs["weights"] = weights
    return factory(**kwargs)
