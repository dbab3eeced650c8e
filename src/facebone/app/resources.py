"""What the demo loads once per server process and shares between sessions (Streamlit's
cached resources), and the lock that keeps shared models to one caller at a time."""

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from facebone.app.lab import AttackLab, demo_pairs, prepare_systems
from facebone.data.lfw import scan_lfw
from facebone.embeddings import EmbeddingCache
from facebone.system import FRSystem, load_system

if TYPE_CHECKING:
    from facebone.gallery.gallery import Gallery


@st.cache_resource
def model_lock() -> threading.Lock:
    """OpenCV's networks are not safe to share across threads; Streamlit runs each session in
    its own thread."""
    return threading.Lock()


@st.cache_resource(show_spinner="Loading the model ...")
def verification_system(model: str) -> FRSystem:
    # A person's photos are never cached.
    system = load_system(Path(model), cache=None, progress=False)
    system.embedder_.warm_up()
    return system


@st.cache_resource(show_spinner="Opening the gallery ...")
def gallery(store: str, model: str, key_file: str | None) -> "Gallery":
    """The gallery of the enrolment page, with a system of its own (holding the key of a
    model that protects its templates)."""
    from facebone.gallery.gallery import Gallery
    from facebone.protection import load_keys

    keys = load_keys(Path(key_file)) if key_file else None
    # A person's photos are never cached.
    system = load_system(Path(model), cache=None, progress=False, keys=keys)
    system.embedder_.warm_up()
    return Gallery.open(store, system, Path(model))


@st.cache_resource(show_spinner="Listing the people in the data ...")
def people(data: str) -> dict[str, list[str]]:
    """{person: image paths} of the data folder."""
    found: dict[str, list[str]] = {}
    for image in scan_lfw(Path(data)):
        found.setdefault(image.identity, []).append(image.path)
    return found


@st.cache_resource(show_spinner="Splitting the data into training and test people ...")
def split_people(data: str) -> dict[str, set[str]]:
    """The people of the demo systems' member pairs and of their non-member pairs."""
    pairs = demo_pairs(Path(data))
    return {
        role: {image.split("/")[0] for pair in chosen for image in (pair.image1, pair.image2)}
        for role, chosen in (("training", pairs.members), ("test", pairs.nonmembers))
    }


@st.cache_resource(
    show_spinner="Training the demo systems, their shadows and the attacks (once, ~30 s) ..."
)
def attack_lab(
    data: str, workdir: str, cache: str, attacks: tuple[str, ...], n_shadows: int
) -> AttackLab:
    embeddings = EmbeddingCache(Path(cache))
    directories = prepare_systems(Path(data), Path(workdir), embeddings)
    return AttackLab(Path(data), directories, embeddings, attacks, n_shadows)
