"""Faces: load images safely, detect faces, align them to what each backbone expects."""
