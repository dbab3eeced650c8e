"""Enrolment and search: enrol photos of a person (-> an opaque subject id), then search the
gallery with a probe photo (-> that id, or no match; never a score)."""

import streamlit as st

from facebone.app import resources
from facebone.app.config import DemoConfig
from facebone.app.views.verification import IMAGE_TYPES, photo_input
from facebone.errors import FaceBoneError
from facebone.faces.image import read_image_bytes
from facebone.uploads import UploadFolder

# The names a person gives in this page: kept in the browser session, never in the gallery.
NAMES = "gallery-names"


def render(config: DemoConfig) -> None:
    st.title("Enrolment and search")
    if config.gallery is None or config.model is None:
        st.error("No gallery: start the demo with --gallery STORE (and --model or --data).")
        return
    try:
        gallery = resources.gallery(
            config.gallery, str(config.model), str(config.key_file) if config.key_file else None
        )
    except FaceBoneError as error:
        st.error(str(error))
        return
    names: dict[str, str] = st.session_state.setdefault(NAMES, {})
    with resources.model_lock():
        enrolled = len(gallery.subjects())
    st.caption(
        f"Gallery {config.gallery} for the model {config.model}; subjects enrolled: {enrolled}."
    )
    st.info(
        "The gallery knows people only by opaque ids (128 random bits); a name typed here stays "
        "in this browser session. A search answers an id or no match, never a score: scores "
        "would tell how close a stranger comes to someone enrolled."
    )
    enrol, search = st.columns(2)
    with enrol:
        _enrol(gallery, config, names)
    with search:
        _search(gallery, config, names)


def _enrol(gallery, config: DemoConfig, names: dict[str, str]) -> None:
    st.subheader("Enrol a person")
    photos = _enrol_photos(config)
    name = st.text_input("Name (optional, kept in this session only)", key="enrol-name")
    if not st.button("Enrol", key="enrol", disabled=not photos):
        return
    try:
        subject = _with_files(
            photos, lambda paths: gallery.enroll(paths, None, convert_color=False)
        )
    except FaceBoneError as error:
        st.error(str(error))
        return
    if name.strip():
        names[subject] = name.strip()
    st.success(f"Enrolled {len(photos)} photo(s) as subject {subject}")


def _enrol_photos(config: DemoConfig) -> list[tuple[bytes, str]]:
    """(bytes, name) of each photo given for the enrolment."""
    sources = ["Upload"] + (["From the data"] if config.data else [])
    source = st.radio("Source", sources, key="enrol-source", horizontal=True)
    if source == "Upload":
        uploads = st.file_uploader(
            "Photos of one person", type=IMAGE_TYPES, accept_multiple_files=True, key="enrol-upload"
        )
        return [(upload.getvalue(), upload.name) for upload in uploads or []]
    people = resources.people(str(config.data))
    person = st.selectbox("Person", sorted(people), key="enrol-person")
    images = st.multiselect("Images", people[person], key="enrol-images")
    return [(read_image_bytes(config.data / image), image) for image in images]


def _search(gallery, config: DemoConfig, names: dict[str, str]) -> None:
    st.subheader("Search the gallery")
    given = photo_input("probe", config)
    if given is None:
        st.info("Give a probe photo to search the gallery for its person.")
        return
    try:
        subject = _with_files([given], lambda paths: gallery.identify(paths[0]).subject)
    except FaceBoneError as error:
        st.error(str(error))
        return
    if subject is None:
        st.warning("No match: nobody enrolled is decided to be this person.")
    else:
        known = f" ({names[subject]})" if subject in names else ""
        st.success(f"Match: subject {subject}{known}")


def _with_files(photos: list[tuple[bytes, str]], work):
    """`work(paths)` on the photos saved in a private folder, holding the model lock; errors
    name the photos, not the folder."""
    with UploadFolder() as folder:
        paths = [folder.save(data, name) for data, name in photos]
        try:
            with resources.model_lock():
                return work(paths)
        except FaceBoneError as error:
            message = str(error)
            for path, (_, name) in zip(paths, photos, strict=True):
                message = message.replace(str(path), name)
            raise type(error)(message) from None
