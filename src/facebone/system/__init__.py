"""The FR system: embedder(s) + predictor, with FaceBone's multiple-backbones mitigation."""

from facebone.system.fr_system import FRSystem, Verification
from facebone.system.model_dir import load_system, save_system
from facebone.system.policies import ASSIGN_POLICIES, INFER_POLICIES, MITIGATIONS

__all__ = [
    "ASSIGN_POLICIES",
    "INFER_POLICIES",
    "MITIGATIONS",
    "FRSystem",
    "Verification",
    "load_system",
    "save_system",
]
