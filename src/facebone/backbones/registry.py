"""Backbone registry: `create_backbone("sface")`, `list_backbones()`, `@register_backbone`."""

from facebone.backbones.base import Backbone
from facebone.registry import Registry

# Each built-in family and the module that registers it (`iresnet` registers iresnet18 to
# iresnet100). Creating a backbone imports only its own module: SFace alone does not wait
# for PyTorch (iresnet) or dlib.
BACKBONES: Registry[Backbone] = Registry(
    "backbone",
    {
        "sface": "facebone.backbones.sface",
        "dlib": "facebone.backbones.dlib_resnet",
        "onnx": "facebone.backbones.onnx_model",
        "iresnet*": "facebone.backbones.iresnet",
    },
)
register_backbone = BACKBONES.register
list_backbones = BACKBONES.list


def create_backbone(spec: str, **kwargs) -> Backbone:
    """Build a backbone from a spec: `sface`, `dlib`, `onnx:PATH` or `iresnet50:WEIGHTS`.

    The part after the first colon is the weights file for backbones that take one.
    """
    name, _, weights = spec.partition(":")
    if weights:
        kwargs["weights"] = weights
    return BACKBONES.create(name, **kwargs)
