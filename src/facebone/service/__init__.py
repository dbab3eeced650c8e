"""The REST API: `create_app(system, settings)` serves a trained system over HTTP (FastAPI).

`guards.py` keeps requests within limits (body size, concurrency, API key), `images.py` reads
the photos of a request, `app.py` holds the routes, `server.py` binds the socket and runs
uvicorn, `process.py` runs `facebone serve` as a child process for the benchmark (`bench.py`)
and the tests.
"""
