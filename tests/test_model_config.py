"""Issue 16: a hand-edited model `config.json` is refused in one line when the model loads
(every option checked as training checks it), never a traceback or a value silently
ignored."""

import json
import shutil

import pytest

from facebone.cli import main
from test_hardening import run_error


def _set(path: str, value):
    def edit(config: dict) -> None:
        *parents, last = path.split(".")
        table = config
        for key in parents:
            table = table[key]
        table[last] = value

    return edit


EDITS = {
    "duplicate-backbones": (_set("system.backbones", ["sface", "sface"]), "listed twice"),
    "backbones-text": (_set("system.backbones", "sface"), "incomplete"),
    "backbone-entry-text": (_set("backbones", ["sface"]), "incomplete"),
    "huge-embedding-dim": (_set("embedding_dim", 10**12), "embedding_dim 1000000000000"),
    "embedding-dim-text": (_set("embedding_dim", "wide"), "incomplete"),
    "seed-text": (_set("system.seed", "x"), "seed must be a whole number"),
    "unknown-mitigation": (_set("system.mitigation", "magic"), "unknown mitigation 'magic'"),
    "unknown-infer": (_set("system.infer", "sometimes"), "inference policy 'sometimes'"),
    "unknown-predictor": (_set("system.predictor", "magic"), "magic"),
    "bad-predictor-option": (_set("predictor.params.l2", -1), "l2 must be a number > 0"),
    "huge-pair-count": (_set("n_training_pairs", [1]), "incomplete"),
    "system-null": (_set("system", None), "system must be an object"),
    "predictor-text": (_set("predictor", "cosine"), "predictor must be an object"),
    "backbones-object": (_set("backbones", {}), "backbones must be a list"),
    "dp-number": (_set("dp", 3), "dp must be an object"),
    "suppression-text": (_set("suppression", "none"), "suppression must be an object"),
}


@pytest.mark.parametrize("edit", EDITS)
def test_a_hand_edited_model_config_is_refused(
    edit, sface_cosine_models, lfw_root, tmp_path, capsys
):
    model = tmp_path / "model"
    shutil.copytree(sface_cosine_models / "plain", model)
    config = json.loads((model / "config.json").read_text())
    change, message = EDITS[edit]
    change(config)
    (model / "config.json").write_text(json.dumps(config))
    photos = sorted((lfw_root / "Colin_Powell").iterdir())[:2]
    err = run_error(capsys, ["verify", *map(str, photos), "--model", str(model)])
    assert message in err, err


def test_the_unedited_model_still_loads(sface_cosine_models, lfw_root, capsys):
    photos = sorted((lfw_root / "Colin_Powell").iterdir())[:2]
    argv = ["verify", *map(str, photos), "--model", str(sface_cosine_models / "plain"), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [("[" * 100_000, "nests too deeply"), ('{"format": 1, "n": ' + "9" * 5000 + "}", "too long")],
    ids=["deep", "long-number"],
)
def test_a_config_json_that_json_cannot_read_is_one_line(
    text, message, sface_cosine_models, lfw_root, tmp_path, capsys
):
    model = tmp_path / "model"
    shutil.copytree(sface_cosine_models / "plain", model)
    (model / "config.json").write_text(text)
    photos = sorted((lfw_root / "Colin_Powell").iterdir())[:2]
    err = run_error(capsys, ["verify", *map(str, photos), "--model", str(model)])
    assert "config.json is damaged" in err and message in err, err
