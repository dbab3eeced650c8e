"""FaceBone: privacy of face-recognition systems, measured honestly."""

__version__ = "0.1.0"
