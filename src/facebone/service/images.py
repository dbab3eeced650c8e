"""The photos of a request: multipart file fields, or base64 strings in a JSON object."""

import base64
import binascii
import json

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from facebone.uploads import MAX_UPLOAD_BYTES


def _usage(names: tuple[str, ...]) -> str:
    example = ", ".join(f'"{name}": "<base64>"' for name in names)
    return (
        f"send {' and '.join(names)} as multipart file fields, or as base64 strings in a JSON "
        f"object {{{example}}}"
    )


def _too_large(name: str) -> str:
    return f"{name}: over the {MAX_UPLOAD_BYTES // (1024 * 1024)} MB limit of an image"


async def read_images(request: Request, names: tuple[str, ...]) -> dict[str, bytes]:
    """{field name: image bytes} for each of `names`; anything else is a 4xx with a reason."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _from_multipart(request, names)
    if content_type == "application/json":
        return _from_json(await request.body(), names)
    raise HTTPException(
        415, f"unsupported content type {content_type or 'none'!r}; " + _usage(names)
    )


async def _from_multipart(request: Request, names: tuple[str, ...]) -> dict[str, bytes]:
    images = {}
    async with request.form(
        max_files=len(names), max_fields=len(names), max_part_size=MAX_UPLOAD_BYTES
    ) as form:
        for name in names:
            item = form.get(name)
            if item is None:
                raise HTTPException(400, f"{name} is missing; " + _usage(names))
            if not isinstance(item, UploadFile):
                raise HTTPException(400, f"{name} must be a file field; " + _usage(names))
            if item.size is not None and item.size > MAX_UPLOAD_BYTES:  # before reading it
                raise HTTPException(413, _too_large(name))
            images[name] = await item.read()
    return images


def _from_json(body: bytes, names: tuple[str, ...]) -> dict[str, bytes]:
    try:
        document = json.loads(body)
    except RecursionError:
        raise HTTPException(400, "the JSON body nests too deeply; " + _usage(names)) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(400, "the body is not valid JSON; " + _usage(names)) from None
    except ValueError:  # json.loads reads integers of at most 4,300 digits
        raise HTTPException(
            400, "the JSON body holds a number too long to read; " + _usage(names)
        ) from None
    if not isinstance(document, dict):
        raise HTTPException(400, "the JSON body must be an object; " + _usage(names))
    return {name: _decode_base64(document.get(name), name, names) for name in names}


def _decode_base64(value: object, name: str, names: tuple[str, ...]) -> bytes:
    if value is None:
        raise HTTPException(400, f"{name} is missing; " + _usage(names))
    if not isinstance(value, str):
        raise HTTPException(400, f"{name} must be a base64 string; " + _usage(names))
    if value.startswith("data:"):
        value = value.partition(",")[2]
    # 4 base64 characters carry 3 bytes: refuse an oversized image before decoding it.
    if len(value) > (MAX_UPLOAD_BYTES + 2) // 3 * 4 + 4:
        raise HTTPException(413, _too_large(name))
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, f"{name} is not valid base64") from None
