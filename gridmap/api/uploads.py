"""Photos sent with a report or a step: a JSON body, or a form (``multipart/form-data``) with
the same fields and the images as repeated file fields. Each image is read up to the deployment's
limit (a larger one is a 413 before its end is read into memory) and checked by its content
(:func:`gridmap.domain.photos.check_photo`: a 415 for anything but JPEG, PNG or WebP)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from gridmap.domain.photos import MAX_PHOTOS, Photo, PhotoTooLarge, check_photo

Body = TypeVar("Body", bound=BaseModel)
CHUNK = 256 * 1024
FORM_SLACK = 256 * 1024  # the form's other fields and its boundaries


def is_form(request: Request) -> bool:
    """A form (``multipart/form-data``, or ``application/x-www-form-urlencoded`` without
    photos) rather than JSON."""
    kind = request.headers.get("content-type", "").lower()
    return kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded"))


async def body_and_photos(request: Request, model: type[Body], *, files: str = "photo",
                          max_bytes: int) -> tuple[Body, list[Photo]]:
    """The request's fields as *model* and its photos (the file fields named *files*);
    a JSON body has no photos."""
    if not is_form(request):
        raw = await request.body()
        try:
            return model.model_validate_json(raw or b"null"), []
        except ValidationError as exc:
            raise RequestValidationError(_located(exc, "body")) from None
    limit_length(request, max_bytes)
    try:
        form = await request.form(max_files=MAX_PHOTOS, max_fields=50)
    except UnicodeDecodeError:
        raise HTTPException(400, "a form field is not UTF-8 text") from None
    fields: dict[str, Any] = {}
    uploads: list[UploadFile] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            if "\x00" in value:
                raise HTTPException(422, f"{key} may not contain a NUL character")
            fields[key] = value
        elif key == files:
            uploads.append(value)
        else:
            raise HTTPException(422, f"{key} is a file: only {files} may be")
    try:
        body = model.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(_located(exc, "body")) from None
    return body, await read_photos(uploads, max_bytes=max_bytes)


def limit_length(request: Request, max_bytes: int) -> None:
    """A request announcing more bytes than its photos may have is refused before it is
    read."""
    length = request.headers.get("content-length", "")
    most = MAX_PHOTOS * max_bytes + FORM_SLACK
    if length.isdigit() and int(length) > most:
        raise PhotoTooLarge(f"the request is {int(length)} bytes: at most {MAX_PHOTOS} "
                            f"photos of {max_bytes} bytes each may be sent")


async def read_photos(uploads: list[UploadFile], *, max_bytes: int) -> list[Photo]:
    """Every upload read (at most *max_bytes* + 1 bytes of each) and checked, in order;
    the first bad one refuses them all."""
    photos = []
    for k, upload in enumerate(uploads, 1):
        name = f"photo {k}" + (f" ({upload.filename[:80]})" if upload.filename else "")
        data = bytearray()
        while len(data) <= max_bytes:
            chunk = await upload.read(CHUNK)
            if not chunk:
                break
            data += chunk
        if len(data) > max_bytes:
            raise PhotoTooLarge(f"{name} is more than the {max_bytes} bytes allowed")
        photos.append(check_photo(bytes(data), name=name, max_bytes=max_bytes))
    return photos


def _located(exc: ValidationError, where: str) -> list[Any]:
    return [{**e, "loc": (where, *e.get("loc", ()))} for e in exc.errors()]


def openapi_body(model: type[BaseModel], *, files: str = "photo", what: str) -> dict[str, Any]:
    """The ``requestBody`` of a route taking *model* as JSON or as a form with photos."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    form = {**schema, "properties": {**schema.get("properties", {}), files: {
        "type": "array", "items": {"type": "string", "format": "binary"},
        "maxItems": MAX_PHOTOS,
        "description": f"up to {MAX_PHOTOS} photos ({what}): JPEG, PNG or WebP, checked by "
        "content; too large: 413, not an image: 415"}}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema},
        "multipart/form-data": {"schema": form}}}}
