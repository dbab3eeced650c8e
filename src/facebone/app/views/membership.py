"""Membership inference: what each attack says about one pair, against the undefended and the
defended systems side by side, next to the truth."""

import streamlit as st

from facebone.app import resources
from facebone.app.config import DemoConfig
from facebone.app.lab import ROLES, AttackLab, AttackVerdict
from facebone.app.photos import read_photo
from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError
from facebone.uploads import UploadFolder

SOURCES = ("A member pair (trained on)", "A non-member pair (never seen)", "Upload two photos")

TEXT = """
Both systems were trained on the same 100 pairs of LFW people (the *members*): the
**undefended** one is SFace + a small neural network trained 300 epochs, the **defended** one
SFace + the cosine predictor. Each attack was trained only on shadow systems of the attacker's
own people; it gives a score, and calls the pair a member when the score reaches its threshold.
"""


def render(config: DemoConfig) -> None:
    st.title("Membership inference")
    st.markdown(TEXT)
    if config.data is None or config.workdir is None or config.cache is None:
        st.info("Start the demo with --data DIR: the systems attacked here are trained from it.")
        return
    try:
        lab = resources.attack_lab(
            str(config.data),
            str(config.workdir),
            str(config.cache),
            config.attacks,
            config.n_shadows,
        )
    except FaceBoneError as error:
        st.error(str(error))
        return
    source = st.radio("Which pair?", SOURCES, horizontal=True)
    if source == SOURCES[2]:
        _judge_uploads(lab)
        return
    pairs = lab.pairs.members if source == SOURCES[0] else lab.pairs.nonmembers
    index = st.selectbox("Pair", range(len(pairs)), format_func=lambda i: _pair_name(pairs[i]))
    pair = pairs[index]
    st.image([str(config.data / pair.image1), str(config.data / pair.image2)], width=150)
    with resources.model_lock():
        verdicts, answers = lab.judge(pair), lab.probabilities(pair)
    _show(verdicts, answers, source == SOURCES[0])


def _pair_name(pair: Pair) -> str:
    first, second = (image.split("/")[-1].rsplit(".", 1)[0] for image in (pair.image1, pair.image2))
    return f"{first} & {second} ({'same person' if pair.label else 'different people'})"


def _judge_uploads(lab: AttackLab) -> None:
    columns = st.columns(2)
    uploads = [
        column.file_uploader(f"Photo {n}", type=["jpg", "jpeg", "png", "webp"], key=f"mi-{n}")
        for n, column in zip((1, 2), columns, strict=True)
    ]
    same = st.radio("The two photos show", ("the same person", "different people"), horizontal=True)
    if not all(uploads):
        st.info("Upload two photos, each with a face.")
        return
    detector = lab.systems["undefended"].embedder_.detector
    try:
        with resources.model_lock():
            photos = [read_photo(u.getvalue(), u.name, detector, False) for u in uploads]
    except FaceBoneError as error:
        st.error(str(error))
        return
    st.image([photo.image for photo in photos], width=150)
    with UploadFolder() as folder:
        paths = [folder.save(photo.data, photo.name) for photo in photos]
        pair = Pair(str(paths[0]), str(paths[1]), int(same == "the same person"))
        with resources.model_lock():
            verdicts, answers = lab.judge(pair), lab.probabilities(pair)
    _show(verdicts, answers, lab.is_member_pair(photos[0].data, photos[1].data))


def _show(verdicts: list[AttackVerdict], answers: dict[str, float], truth: bool) -> None:
    if truth:
        st.info("Truth: **member**: this pair was in both systems' training data.")
    else:
        st.info("Truth: **non-member**: neither system was trained on this pair.")
    cells = st.columns(len(answers))
    for cell, (role, probability) in zip(cells, answers.items(), strict=True):
        cell.metric(f"{role} system: P(same)", f"{probability:.3f}")
    rows: dict[str, dict[str, str]] = {}
    for verdict in verdicts:
        said = "member" if verdict.member else "non-member"
        right = "right" if verdict.member == truth else "wrong"
        row = rows.setdefault(verdict.attack, {"attack": verdict.attack})
        row[f"{verdict.role}: score"] = f"{verdict.score:.3f} (threshold {verdict.threshold:.3f})"
        row[f"{verdict.role}: says"] = f"{said} ({right})"
    st.subheader("What each attack says")
    st.dataframe(list(rows.values()), hide_index=True)
    st.caption(
        f"Columns: the {' and '.join(ROLES)} systems. One pair decides little; the Privacy "
        "report gives each attack's AUC over hundreds of members and non-members."
    )
