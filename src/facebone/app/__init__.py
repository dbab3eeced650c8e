"""The web demo (Streamlit): `facebone demo` runs `main.py`.

`config.py` is what the command passes to the script; `lab.py` trains the demo's own
undefended and defended systems and fits the membership attacks on them; `photos.py` prepares
a person's photo (faces found, the one to verify, the aligned crop the model sees);
`results.py` reads an experiment results folder; `resources.py` holds what Streamlit loads once
per server; `views/` has one module per page, each a `render(config)`.
"""
