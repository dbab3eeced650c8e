"""The REST API: `create_app(system, settings)` serves a trained system over HTTP (FastAPI).

`connections.py` keeps connections within limits (a cap, header and body deadlines),
`guards.py` keeps requests within limits (API keys, body size, a query budget per client,
concurrency), `images.py` reads the photos of a request, `app.py` holds the routes and shows
answers through the output policy (`facebone.system.output_policy`), `server.py` binds the
socket and runs uvicorn, `process.py` runs `facebone serve` as a child process for the
benchmark (`bench.py`) and the tests.
"""
