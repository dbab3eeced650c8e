"""Face verification: two photos (upload, camera, or from the data) -> the system's decision."""

import time
from pathlib import Path

import streamlit as st

from facebone.app import resources
from facebone.app.config import DemoConfig
from facebone.app.photos import Photo, aligned_faces, face_thumbnail, read_photo
from facebone.errors import FaceBoneError
from facebone.faces.image import read_image_bytes
from facebone.system.fr_system import THRESHOLD
from facebone.system.summary import describe_system
from facebone.uploads import UploadFolder

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp"]
SIDES = ("first", "second")


def render(config: DemoConfig) -> None:
    st.title("Face verification")
    if config.model is None:
        st.error("No model: start the demo with --model DIR, or with --data DIR for a default.")
        return
    try:
        system = resources.verification_system(str(config.model))
    except FaceBoneError as error:
        st.error(str(error))
        return
    st.caption(f"Model: {describe_system(system)} ({config.model})")
    if config.default_model:
        st.info(
            f"No --model was given: this is the demo's default system, trained on 100 pairs of "
            f"{config.data}."
        )
    convert_color = st.checkbox("Accept grayscale or transparent photos (converted to colour)")
    lock = resources.model_lock()
    photos: list[Photo] = []
    choices: list[int] = []
    for side, column in zip(SIDES, st.columns(2), strict=True):
        with column:
            given = photo_input(side, config)
            if given is None:
                continue
            try:
                with lock:
                    photo = read_photo(*given, system.embedder_.detector, convert_color)
            except FaceBoneError as error:
                st.error(str(error))
                continue
            photos.append(photo)
            choices.append(_choose_face(photo, side))
    if len(photos) < 2:
        st.info("Give two photos, each with a face, to compare them.")
        return
    with UploadFolder() as folder:
        paths = [folder.save(photo.data, photo.name) for photo in photos]
        try:
            with lock:
                start = time.perf_counter()
                answer = system.verify(
                    paths[0], paths[1], convert_color, faces=(choices[0] + 1, choices[1] + 1)
                )
                elapsed_ms = (time.perf_counter() - start) * 1000
        except FaceBoneError as error:
            st.error(str(error))
            return
    seen = [
        aligned_faces(photo, choice, system.embedder_.backbones)
        for photo, choice in zip(photos, choices, strict=True)
    ]
    st.subheader("Decision")
    verdict = "Same person" if answer.same else "Different people"
    relation = ">=" if answer.same else "<"
    message = f"{verdict}: P(same) = {answer.probability:.3f} {relation} threshold {THRESHOLD}"
    (st.success if answer.same else st.warning)(message)
    st.progress(
        answer.probability, text=f"probability {answer.probability:.3f} (threshold {THRESHOLD})"
    )
    metrics = st.columns(4)
    metrics[0].metric("Probability", f"{answer.probability:.3f}")
    metrics[1].metric("Threshold", f"{THRESHOLD:.2f}")
    metrics[2].metric("Time", f"{elapsed_ms:.0f} ms")
    metrics[3].metric("Answered by", answer.backbone)
    st.subheader("What the model saw")
    for side, crops, column in zip(SIDES, seen, st.columns(2), strict=True):
        with column:
            st.image(list(crops.values()), caption=[f"{side}: {name}" for name in crops], width=112)


def photo_input(side: str, config: DemoConfig) -> tuple[bytes, str] | None:
    """(bytes, name) of the photo given for one side, or None while there is none."""
    st.subheader(f"{side.capitalize()} photo")
    sources = ["Upload", "Camera"] + (["From the data"] if config.data else [])
    source = st.radio("Source", sources, key=f"{side}-source", horizontal=True)
    if source == "Upload":
        upload = st.file_uploader("Photo", type=IMAGE_TYPES, key=f"{side}-upload")
        return (upload.getvalue(), upload.name) if upload else None
    if source == "Camera":
        shot = st.camera_input("Take a photo", key=f"{side}-camera")
        return (shot.getvalue(), f"{side} camera photo") if shot else None
    return _pick_from_data(side, config.data)


def _pick_from_data(side: str, data: Path) -> tuple[bytes, str] | None:
    people = resources.people(str(data))
    group = st.radio(
        "People",
        ["all", "training", "test"],
        key=f"{side}-group",
        horizontal=True,
        help="training / test: the people of the membership page's member / non-member pairs",
    )
    names = sorted(people)
    if group != "all":
        names = sorted(resources.split_people(str(data))[group])
    person = st.selectbox("Person", names, key=f"{side}-person")
    image = st.selectbox("Image", people[person], key=f"{side}-image")
    if image is None:
        return None
    st.image(str(data / image), width=160)
    return read_image_bytes(data / image), image


def _choose_face(photo: Photo, side: str) -> int:
    """Index of the face to verify: the person picks when the photo holds several."""
    if len(photo.faces) == 1:
        return 0
    st.image(
        [face_thumbnail(photo, face) for face in photo.faces],
        caption=[f"face {index + 1}" for index in range(len(photo.faces))],
    )
    return st.radio(
        f"{len(photo.faces)} faces found; which one?",
        range(len(photo.faces)),
        format_func=lambda index: f"face {index + 1}",
        key=f"{side}-face",
        horizontal=True,
    )
