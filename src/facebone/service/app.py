"""FastAPI routes: POST /verify, GET /healthz, POST /embed when enabled, the gallery's routes
when serving one, and OpenAPI docs at /docs and /redoc (their assets served here, so they work
offline).

Conventions of deepface's API where they fit: images `img1` / `img2` (multipart files or
base64 JSON), an `{"error": ...}` body for every failure. Every failure a client can cause is a
4xx with a reason in the API's words (the field, the query parameter); anything else is a 500
whose details stay in the server log. With API keys, everything but a bare /healthz needs one,
and each route a scope of that key (`guards.SCOPES`); on a server without keys (loopback only)
every enabled route answers.
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import facebone
from facebone.errors import FaceBoneError, NoFaceError
from facebone.service.guards import (
    KEY_HEADER,
    AccessGuard,
    ApiKey,
    BodyLimitMiddleware,
    ConcurrencyGate,
    QueryBudget,
    require_scope,
)
from facebone.service.images import read_images
from facebone.system.fr_system import THRESHOLD, FRSystem, Verification
from facebone.system.output_policy import OutputPolicy
from facebone.system.summary import describe_system
from facebone.uploads import MAX_UPLOAD_BYTES, UploadFolder, UploadTooLargeError

if TYPE_CHECKING:
    from facebone.gallery.gallery import Gallery

log = logging.getLogger(__name__)

FACE_NUMBER = (
    "which face of a photo with several: 1 covers the centre (else the largest), then by size"
)

# Two images of at most 10 MB each, base64 (4/3 larger), and the JSON or multipart framing.
MAX_BODY_BYTES = 3 * MAX_UPLOAD_BYTES

# The docs pages' scripts and styles, served from here: a CDN would leave them blank offline.
DOCS_ASSETS = "/docs/assets"


@dataclass(frozen=True)
class ServiceSettings:
    """`max_concurrent` requests at work at once (more get 503); `api_keys`: the keys clients
    send as X-API-Key with their scopes, none for an open server; `output`: what a client sees
    of P(same); `query_budget` answers per client (None: unlimited), counted anew after
    `query_window` seconds (None: only when the server restarts), see `QueryBudget`;
    `enable_embed`: whether POST /embed exists (it hands out templates, so it is off unless
    asked for)."""

    max_concurrent: int = 8
    api_keys: tuple[ApiKey, ...] = ()
    output: OutputPolicy = field(default_factory=OutputPolicy)
    query_budget: int | None = None
    query_window: float | None = None
    enable_embed: bool = False


class VerifyAnswer(BaseModel):
    same: bool
    probability: float
    threshold: float
    output: str
    model: str
    time_ms: float


class EmbedAnswer(BaseModel):
    embeddings: dict[str, list[float]]
    model: str
    time_ms: float


class ErrorAnswer(BaseModel):
    error: str


ERRORS = {
    code: {"model": ErrorAnswer, "description": text}
    for code, text in (
        (400, "bad input: missing field, not an image, bad base64"),
        (401, "missing or wrong API key"),
        (403, "the API key lacks the route's scope"),
        (408, "the headers or the body came too slowly"),
        (413, "body or image over the size limits"),
        (415, "neither multipart/form-data nor application/json"),
        (422, "no face in an image, or a bad query parameter"),
        (429, "this client's query budget is used up"),
        (503, "too many requests or connections at once; retry"),
    )
}


def _image_body(names: tuple[str, ...]) -> dict:
    """The request body in the OpenAPI docs: FastAPI cannot infer it from a raw Request."""
    as_file = {"type": "string", "format": "binary"}
    as_text = {"type": "string", "description": "base64 of the image file, or a data: URI"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                media: {
                    "schema": {
                        "type": "object",
                        "required": list(names),
                        "properties": {name: schema for name in names},
                    }
                }
                for media, schema in (
                    ("multipart/form-data", as_file),
                    ("application/json", as_text),
                )
            },
        }
    }


def create_app(
    system: FRSystem, settings: ServiceSettings | None = None, gallery: "Gallery | None" = None
) -> FastAPI:
    """An app answering with `system`, which stays loaded (and is never re-seeded); with
    `gallery` (of the same system), the gallery's routes too (`gallery_routes.py`)."""
    settings = settings or ServiceSettings()
    app = FastAPI(
        title="FaceBone",
        version=facebone.__version__,
        description="Face verification with a trained FaceBone system.",
        docs_url=None,
        redoc_url=None,
    )
    # The last added runs first: the key is checked before any body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(AccessGuard, api_keys=settings.api_keys)
    _add_error_handlers(app)
    _add_docs(app)
    gate = ConcurrencyGate(settings.max_concurrent)
    budget = QueryBudget(settings.query_budget, settings.query_window)
    # One model for all requests: its OpenCV networks are not safe to share across threads.
    model_lock = threading.Lock()
    model = describe_system(system)
    # AccessGuard checks the key; this only declares it in the OpenAPI schema for clients.
    key_scheme = [Security(APIKeyHeader(name=KEY_HEADER, auto_error=False))]
    keyed = key_scheme if settings.api_keys else []

    def scoped(scope: str) -> list:
        """The dependencies of a route of `scope`: the key, then its scope."""
        return [*keyed, Depends(require_scope(scope))]

    def verify_photos(
        images: dict[str, bytes], convert_color: bool, faces: tuple[int, int]
    ) -> Verification:
        with UploadFolder() as folder:
            paths = {name: folder.save(data, name) for name, data in images.items()}
            with model_lock, _in_api_terms(paths):
                return system.verify(paths["img1"], paths["img2"], convert_color, faces)

    def embed_photo(data: bytes, convert_color: bool, face: int) -> dict[str, list[float]]:
        with UploadFolder() as folder:
            paths = {"img": folder.save(data, "img")}
            with model_lock, _in_api_terms(paths):
                embeddings = system.embedder_.photo(paths["img"], convert_color, face)
        # What the system stores: with template protection, the keyed template, never the
        # embedding it hides.
        return {
            name: system.protect(name, vector[None])[0].tolist()
            for name, vector in embeddings.items()
        }

    @app.get("/healthz")
    def healthz(request: Request) -> dict[str, str]:
        """Is the server up? With API keys, only a client sending one learns the model."""
        if settings.api_keys and request.state.client is None:
            return {"status": "ok"}
        return {"status": "ok", "model": model}

    @app.post(
        "/verify",
        response_model=VerifyAnswer,
        responses=ERRORS,
        dependencies=scoped("verify"),
        openapi_extra=_image_body(("img1", "img2")),
    )
    async def verify(
        request: Request,
        convert_color: bool = False,
        face1: int = Query(1, ge=1, description=FACE_NUMBER),
        face2: int = Query(1, ge=1, description=FACE_NUMBER),
    ) -> VerifyAnswer:
        """Do the faces in img1 and img2 show the same person? `probability` is what the
        server's output policy (`output`) shows: the probability, a coarse level, or 0/1."""
        start = time.perf_counter()
        with budget.spend(request.state.client):
            images = await read_images(request, ("img1", "img2"))
            with gate:
                answer = await run_in_threadpool(
                    verify_photos, images, convert_color, (face1, face2)
                )
        return VerifyAnswer(
            same=answer.same,
            probability=float(settings.output(answer.probability)),
            threshold=THRESHOLD,
            output=settings.output.name,
            model=model,
            time_ms=round((time.perf_counter() - start) * 1000, 1),
        )

    if gallery is not None:
        from facebone.service.gallery_routes import add_gallery_routes

        add_gallery_routes(app, gallery, budget, gate, model_lock, scoped)
    # A client who may read templates can search them offline: the route exists only when
    # the server is started with it (`serve --enable-embed`).
    if settings.enable_embed:

        @app.post(
            "/embed",
            response_model=EmbedAnswer,
            responses=ERRORS,
            dependencies=scoped("embed"),
            openapi_extra=_image_body(("img",)),
        )
        async def embed(
            request: Request,
            convert_color: bool = False,
            face: int = Query(1, ge=1, description=FACE_NUMBER),
        ) -> EmbedAnswer:
            """The face's embedding through each backbone of the system."""
            start = time.perf_counter()
            with budget.spend(request.state.client):
                images = await read_images(request, ("img",))
                with gate:
                    embeddings = await run_in_threadpool(
                        embed_photo, images["img"], convert_color, face
                    )
            return EmbedAnswer(
                embeddings=embeddings,
                model=model,
                time_ms=round((time.perf_counter() - start) * 1000, 1),
            )

    return app


@contextmanager
def _in_api_terms(uploads: dict[str, Path]) -> Iterator[None]:
    """The library's errors in the API's words: a photo by its field, not the server's
    temporary file; the query parameter, not the command-line flag."""
    try:
        yield
    except FaceBoneError as error:
        message = str(error).replace("--convert-color", "convert_color=true")
        for name, path in uploads.items():
            message = message.replace(str(path), name)
        raise type(error)(message) from None


def _add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with their assets served here (from the
    `fastapi-offline` package), so they work without internet."""
    app.mount(
        DOCS_ASSETS, StaticFiles(directory=files("fastapi_offline") / "static"), name="assets"
    )
    favicon = f"{DOCS_ASSETS}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=favicon,
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )


def _add_error_handlers(app: FastAPI) -> None:
    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg')}"
            for e in exc.errors()
        )
        return error(422, reasons or "invalid request")

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Not a fault of the server: no traceback, and nobody is left to answer.
        log.debug("client left during %s", request.url.path)
        return Response(status_code=400)

    @app.exception_handler(FaceBoneError)
    async def bad_image(request: Request, exc: FaceBoneError) -> JSONResponse:
        if isinstance(exc, UploadTooLargeError):
            status = 413
        elif isinstance(exc, NoFaceError):
            status = 422
        else:
            status = 400
        return error(status, " ".join(str(exc).split()))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        return error(500, "internal error; the details are in the server log")
