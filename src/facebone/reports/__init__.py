"""Reports a person reads: one self-contained HTML file and a Markdown summary beside it.

`document.py` holds a report as data (sections of text, tables and figures); `html.py` and
`markdown.py` render it; `tables.py` and `figures.py` make its parts from results;
`study.py` assembles the privacy report of a study or comparison, `sources.py` reads a
results folder, `experiments.py` reports `facebone experiment`, and `output.py` writes the
files atomically without replacing any unless asked.
"""
