"""The gallery over HTTP (`serve --gallery STORE`): enrol subjects, identify a photo (1:N),
verify a photo against one subject (1:1), list and delete subjects.

Who may ask what (the API key's scopes, `guards.SCOPES`):

- `enrol`: POST /subjects, POST /subjects/{id}/faces, DELETE /subjects/{id};
- `identify`: POST /identify;
- `verify`: POST /subjects/{id}/verify (and the photo-to-photo POST /verify);
- `admin`: GET /subjects.

The membership threat of a gallery is the question "is this person enrolled?". POST /identify
answers it by design, so only keys with `identify` may ask. Every other answer is built not
to: answers are a decision and an opaque id, never a score (scores would tell how close a
stranger comes to someone enrolled); a subject is named by 128 random bits, so a client that
was not given an id cannot find one; an unknown id is a 404 checked before the photo is read,
so the answer cannot depend on who is in the photo. A client with `verify` alone therefore
gets the same answers whether or not the person in its photos is enrolled (tests/
test_gallery_service.py measures this on real faces). What such a client can learn is the
1:1 decision for an id it holds, which is what the id was given for. Keep in mind what
combinations grant: `admin` lists every id, so `admin` with `verify` can ask the membership
question one subject at a time, as `identify` does at once.

Deletion here removes the subject's templates from the store and its index; retraining a
model that saw the person (and checking the erasure) is `facebone gallery delete --verify`.
Identify and verify answers count against the client's query budget; enrolment does not.
"""

import threading
from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from facebone.gallery.gallery import Gallery
from facebone.service.app import ERRORS, ErrorAnswer, _image_body, _in_api_terms
from facebone.service.guards import ConcurrencyGate, QueryBudget
from facebone.service.images import read_image_list, read_images
from facebone.uploads import UploadFolder

# Photos of one enrolment request; more go in further POST /subjects/{id}/faces requests.
MAX_ENROL_PHOTOS = 3
SUBJECT_ERRORS = {**ERRORS, 404: {"model": ErrorAnswer, "description": "no such subject"}}


class SubjectAnswer(BaseModel):
    subject: str


class DeletedAnswer(BaseModel):
    subject: str
    faces_deleted: int


class SubjectRow(BaseModel):
    subject: str
    faces: int
    created: float


class SubjectsAnswer(BaseModel):
    subjects: list[SubjectRow]


class IdentifyAnswer(BaseModel):
    match: bool
    subject: str | None


class SameAnswer(BaseModel):
    same: bool


def add_gallery_routes(
    app: FastAPI,
    gallery: Gallery,
    budget: QueryBudget,
    gate: ConcurrencyGate,
    model_lock: threading.Lock,
    scoped: Callable[[str], list],
) -> None:
    """The gallery's routes on `app`; `scoped(scope)` gives a route's key and scope checks.
    Every use of the gallery holds `model_lock`: it shares the system's networks and one
    store connection."""

    def in_gallery(work: Callable, images: dict[str, bytes], convert_color: bool):
        """`work(paths, convert_color)` with the images saved under their field names."""
        with UploadFolder() as folder:
            paths = {name: folder.save(data, name) for name, data in images.items()}
            with model_lock, _in_api_terms(paths):
                return work(list(paths.values()), convert_color)

    def known(subject: str) -> None:
        with model_lock:
            found = gallery.store.has_subject(subject)
        if not found:
            raise HTTPException(404, "no such subject")

    async def enrol(request: Request, subject: str | None, convert_color: bool) -> str:
        photos = await read_image_list(request, "img", MAX_ENROL_PHOTOS)
        images = {f"img[{number}]": data for number, data in enumerate(photos, 1)}
        with gate:
            return await run_in_threadpool(
                in_gallery,
                lambda paths, convert: gallery.enroll(paths, subject, convert),
                images,
                convert_color,
            )

    @app.post(
        "/subjects",
        status_code=201,
        response_model=SubjectAnswer,
        responses=ERRORS,
        dependencies=scoped("enrol"),
        openapi_extra=_image_body(("img",)),
    )
    async def create_subject(request: Request, convert_color: bool = False) -> SubjectAnswer:
        """Enrol a new subject from 1 to 3 photos (field `img`, repeated; in JSON a list of
        base64 strings), each with one face (the one covering the centre, else the largest).
        Answers the subject's opaque id: the names are the caller's business."""
        return SubjectAnswer(subject=await enrol(request, None, convert_color))

    @app.post(
        "/subjects/{subject}/faces",
        response_model=SubjectAnswer,
        responses=SUBJECT_ERRORS,
        dependencies=scoped("enrol"),
        openapi_extra=_image_body(("img",)),
    )
    async def add_faces(request: Request, subject: str, convert_color: bool = False):
        """Add 1 to 3 photos to an enrolled subject (a photo it already has is not added
        twice)."""
        known(subject)
        return SubjectAnswer(subject=await enrol(request, subject, convert_color))

    @app.delete(
        "/subjects/{subject}",
        response_model=DeletedAnswer,
        responses=SUBJECT_ERRORS,
        dependencies=scoped("enrol"),
    )
    async def delete_subject(subject: str) -> DeletedAnswer:
        """Delete a subject: its faces and templates leave the store and the search index.
        (A model trained on the person is retrained by `facebone gallery delete --verify`.)"""
        known(subject)

        def delete() -> int:
            with model_lock:
                return gallery.delete(subject)

        return DeletedAnswer(subject=subject, faces_deleted=await run_in_threadpool(delete))

    @app.get(
        "/subjects", response_model=SubjectsAnswer, responses=ERRORS, dependencies=scoped("admin")
    )
    def list_subjects() -> SubjectsAnswer:
        """Every enrolled subject: its id, number of faces, and when it was enrolled."""
        with model_lock:
            subjects = gallery.subjects()
        return SubjectsAnswer(
            subjects=[
                SubjectRow(subject=row.id, faces=row.faces, created=row.created) for row in subjects
            ]
        )

    @app.post(
        "/identify",
        response_model=IdentifyAnswer,
        responses=ERRORS,
        dependencies=scoped("identify"),
        openapi_extra=_image_body(("img",)),
    )
    async def identify(request: Request, convert_color: bool = False) -> IdentifyAnswer:
        """Who in the gallery is in photo `img`? The best subject's id if it clears the
        gallery's open-set threshold, else no match; never a score. Answering "is this person
        enrolled?" is why this route has a scope of its own."""
        with budget.spend(request.state.client):
            images = await read_images(request, ("img",))
            with gate:
                found = await run_in_threadpool(
                    in_gallery,
                    lambda paths, convert: gallery.identify(paths[0], convert).subject,
                    images,
                    convert_color,
                )
        return IdentifyAnswer(match=found is not None, subject=found)

    @app.post(
        "/subjects/{subject}/verify",
        response_model=SameAnswer,
        responses=SUBJECT_ERRORS,
        dependencies=scoped("verify"),
        openapi_extra=_image_body(("img",)),
    )
    async def verify_subject(
        request: Request, subject: str, convert_color: bool = False
    ) -> SameAnswer:
        """Is photo `img` the enrolled subject? The decision only. An unknown id is a 404
        given before the photo is read, so it tells nothing about the photo."""
        known(subject)
        with budget.spend(request.state.client):
            images = await read_images(request, ("img",))
            with gate:
                same = await run_in_threadpool(
                    in_gallery,
                    lambda paths, convert: gallery.verify(subject, paths[0], convert),
                    images,
                    convert_color,
                )
        return SameAnswer(same=same)
