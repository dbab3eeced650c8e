"""Backbone zoo: `create_backbone("sface")`, `list_backbones()`.

Each architecture lives in its own module and registers its factory with
`@register_backbone(name)`; adding a backbone is adding one module and its entry in
`BUILTIN_MODULES`. A module is imported when its backbone is first created, so that the CLI
starts fast, SFace alone never loads PyTorch, and worker processes stay light.
"""

from facebone.backbones.base import Backbone
from facebone.backbones.registry import create_backbone, list_backbones, register_backbone

__all__ = ["Backbone", "create_backbone", "list_backbones", "register_backbone"]
