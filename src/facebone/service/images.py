"""The photos of a request: multipart file fields, or base64 strings in a JSON object (one per
field, or, for `read_image_list`, several under one field)."""

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


async def read_image_list(request: Request, name: str, limit: int) -> list[bytes]:
    """1 to `limit` images under the field `name`: the field repeated in a multipart form, or
    in JSON a base64 string or a list of them. Errors name each image `name[N]`, from 1."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    usage = (
        f"send one to {limit} images as multipart file fields all named {name}, or as a JSON "
        f'object {{"{name}": ["<base64>", ...]}}'
    )
    if content_type == "multipart/form-data":
        async with request.form(
            max_files=limit, max_fields=limit, max_part_size=MAX_UPLOAD_BYTES
        ) as form:
            items = form.getlist(name)
            if not items:
                raise HTTPException(400, f"{name} is missing; {usage}")
            return [
                await _file_bytes(item, f"{name}[{number}]", usage)
                for number, item in enumerate(items, 1)
            ]
    if content_type != "application/json":
        raise HTTPException(415, f"unsupported content type {content_type or 'none'!r}; {usage}")
    value = _json_object(await request.body(), usage).get(name)
    values = value if isinstance(value, list) else [value]
    if value is None or not values:
        raise HTTPException(400, f"{name} is missing; {usage}")
    if len(values) > limit:
        raise HTTPException(400, f"{name}: more than {limit} images; {usage}")
    return [
        _decode_base64(item, f"{name}[{number}]", usage) for number, item in enumerate(values, 1)
    ]


async def _from_multipart(request: Request, names: tuple[str, ...]) -> dict[str, bytes]:
    async with request.form(
        max_files=len(names), max_fields=len(names), max_part_size=MAX_UPLOAD_BYTES
    ) as form:
        return {name: await _file_bytes(form.get(name), name, _usage(names)) for name in names}


async def _file_bytes(item: object, name: str, usage: str) -> bytes:
    if item is None:
        raise HTTPException(400, f"{name} is missing; {usage}")
    if not isinstance(item, UploadFile):
        raise HTTPException(400, f"{name} must be a file field; {usage}")
    if item.size is not None and item.size > MAX_UPLOAD_BYTES:  # before reading it
        raise HTTPException(413, _too_large(name))
    return await item.read()


def _from_json(body: bytes, names: tuple[str, ...]) -> dict[str, bytes]:
    document = _json_object(body, _usage(names))
    return {name: _decode_base64(document.get(name), name, _usage(names)) for name in names}


def _json_object(body: bytes, usage: str) -> dict:
    try:
        document = json.loads(body)
    except RecursionError:
        raise HTTPException(400, f"the JSON body nests too deeply; {usage}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(400, f"the body is not valid JSON; {usage}") from None
    except ValueError:  # json.loads reads integers of at most 4,300 digits
        raise HTTPException(
            400, f"the JSON body holds a number too long to read; {usage}"
        ) from None
    if not isinstance(document, dict):
        raise HTTPException(400, f"the JSON body must be an object; {usage}")
    return document


def _decode_base64(value: object, name: str, usage: str) -> bytes:
    if value is None:
        raise HTTPException(400, f"{name} is missing; {usage}")
    if not isinstance(value, str):
        raise HTTPException(400, f"{name} must be a base64 string; {usage}")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    # 4 base64 characters carry 3 bytes: refuse an oversized image before decoding it.
    if len(value) > (MAX_UPLOAD_BYTES + 2) // 3 * 4 + 4:
        raise HTTPException(413, _too_large(name))
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, f"{name} is not valid base64") from None
