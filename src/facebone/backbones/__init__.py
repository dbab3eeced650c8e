"""Backbone zoo: `create_backbone("sface")`, `list_backbones()`.

Each architecture lives in its own module and registers its factory with
`@register_backbone(name)` (facebone/registry.py); the built-in families' modules are named in
`registry.BACKBONES`, and a plugin's module is imported by its user before the look-up. A module
is imported when its backbone is first created, so that the CLI starts fast, SFace alone never
loads PyTorch, and worker processes stay light.
"""

from facebone.backbones.base import Backbone
from facebone.backbones.registry import create_backbone, list_backbones, register_backbone

__all__ = ["Backbone", "create_backbone", "list_backbones", "register_backbone"]
