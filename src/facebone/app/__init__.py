"""The web demo (Streamlit): `facebone demo` runs `main.py`.

`lab.py` trains the demo's own undefended and defended systems and fits the membership
attacks on them; `photos.py` prepares a person's photo (faces found, the one to verify, the
aligned crop the model sees); `views/` holds one module per page, each a `render(config)`.
"""
