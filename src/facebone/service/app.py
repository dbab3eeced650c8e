"""FastAPI routes: POST /verify, POST /embed, GET /healthz, and OpenAPI docs at /docs.

Conventions of deepface's API where they fit: images `img1` / `img2` (multipart files or
base64 JSON), an `{"error": ...}` body for every failure. Every failure a client can cause is a
4xx with a reason; anything else is a 500 whose details stay in the server log.
"""

import logging
import threading
import time
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

import facebone
from facebone.errors import FaceBoneError, NoFaceError
from facebone.service.guards import BodyLimitMiddleware, ConcurrencyGate, check_api_key
from facebone.service.images import read_images
from facebone.system.fr_system import THRESHOLD, FRSystem, Verification
from facebone.system.summary import describe_system
from facebone.uploads import MAX_UPLOAD_BYTES, UploadFolder, UploadTooLargeError

log = logging.getLogger(__name__)

FACE_NUMBER = (
    "which face of a photo with several: 1 covers the centre (else the largest), then by size"
)

# Two images of at most 10 MB each, base64 (4/3 larger), and the JSON or multipart framing.
MAX_BODY_BYTES = 3 * MAX_UPLOAD_BYTES


@dataclass(frozen=True)
class ServiceSettings:
    """`max_concurrent` requests at work at once (more get 503); `api_key` None: no key."""

    max_concurrent: int = 8
    api_key: str | None = None


class VerifyAnswer(BaseModel):
    same: bool
    probability: float
    threshold: float
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
        (413, "body or image over the size limits"),
        (415, "neither multipart/form-data nor application/json"),
        (422, "no face in an image, or a bad query parameter"),
        (503, "too many requests at once; retry"),
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


def create_app(system: FRSystem, settings: ServiceSettings | None = None) -> FastAPI:
    """An app answering with `system`, which stays loaded (and is never re-seeded)."""
    settings = settings or ServiceSettings()
    app = FastAPI(
        title="FaceBone",
        version=facebone.__version__,
        description="Face verification with a trained FaceBone system.",
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    _add_error_handlers(app)
    gate = ConcurrencyGate(settings.max_concurrent)
    # One model for all requests: its OpenCV networks are not safe to share across threads.
    model_lock = threading.Lock()
    model = describe_system(system)

    async def require_key(x_api_key: str | None = Header(None)) -> None:
        check_api_key(settings.api_key, x_api_key)

    def verify_photos(
        images: dict[str, bytes], convert_color: bool, faces: tuple[int, int]
    ) -> Verification:
        with UploadFolder() as folder:
            first = folder.save(images["img1"], "img1")
            second = folder.save(images["img2"], "img2")
            with model_lock:
                return system.verify(first, second, convert_color, faces)

    def embed_photo(data: bytes, convert_color: bool, face: int) -> dict[str, list[float]]:
        with UploadFolder() as folder:
            path = folder.save(data, "img")
            with model_lock:
                embeddings = system.embedder_.photo(path, convert_color, face)
        # What the system stores: with template protection, the keyed template, never the
        # embedding it hides.
        return {
            name: system.protect(name, vector[None])[0].tolist()
            for name, vector in embeddings.items()
        }

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "model": model}

    @app.post(
        "/verify",
        response_model=VerifyAnswer,
        responses=ERRORS,
        dependencies=[Depends(require_key)],
        openapi_extra=_image_body(("img1", "img2")),
    )
    async def verify(
        request: Request,
        convert_color: bool = False,
        face1: int = Query(1, ge=1, description=FACE_NUMBER),
        face2: int = Query(1, ge=1, description=FACE_NUMBER),
    ) -> VerifyAnswer:
        """Do the faces in img1 and img2 show the same person?"""
        with gate:
            start = time.perf_counter()
            images = await read_images(request, ("img1", "img2"))
            answer = await run_in_threadpool(verify_photos, images, convert_color, (face1, face2))
            return VerifyAnswer(
                same=answer.same,
                probability=answer.probability,
                threshold=THRESHOLD,
                model=model,
                time_ms=round((time.perf_counter() - start) * 1000, 1),
            )

    @app.post(
        "/embed",
        response_model=EmbedAnswer,
        responses=ERRORS,
        dependencies=[Depends(require_key)],
        openapi_extra=_image_body(("img",)),
    )
    async def embed(
        request: Request,
        convert_color: bool = False,
        face: int = Query(1, ge=1, description=FACE_NUMBER),
    ) -> EmbedAnswer:
        """The face's embedding through each backbone of the system."""
        with gate:
            start = time.perf_counter()
            images = await read_images(request, ("img",))
            embeddings = await run_in_threadpool(embed_photo, images["img"], convert_color, face)
            return EmbedAnswer(
                embeddings=embeddings,
                model=model,
                time_ms=round((time.perf_counter() - start) * 1000, 1),
            )

    return app


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
