"""One line that tells a person which system answers: shown by the demo and the REST API."""

from facebone.system.fr_system import FRSystem


def describe_system(system: FRSystem) -> str:
    """E.g. "sface + dlib, nn predictor, multi-backbone (assign all, infer random)"."""
    text = f"{' + '.join(system.backbones)}, {system.predictor} predictor"
    if system.mitigation == "multi":
        text += f", multi-backbone (assign {system.assign}, infer {system.infer})"
    if system.template_protection is not None:
        text += f", {system.template_protection} template protection"
    return text
