"""Studies: one TOML configuration runs a whole privacy study and keeps its results.

`config.py` reads and checks the configuration before any work, `engine.py` runs its grid
(splits -> embeddings -> each system -> utility -> each attack) on an executor from
`executors.py` (local processes or Ray), `records.py` holds the typed result records and
`store.py` the SQLite results database that lets a killed run resume.
"""
