"""Issue 8: the membership ROC plot of a real `facebone attack membership --plot` run names
the model, keeps its legend off the curves and draws a yes/no attack as one point."""

import contextlib
import json

import pytest

from facebone.attacks.membership.plot import MIN_FPR, decision_point, roc_figure
from facebone.cli import main


@pytest.fixture(scope="module")
def attack_run(tmp_path_factory, lfw_root, cache_dir, lfw_embeddings):
    """Results and SVG plot of a black-box and a rule-based attack on an SFace nn model."""
    lfw_embeddings("sface")
    root = tmp_path_factory.mktemp("roc")
    pairs = root / "pairs"
    common = ["--data", str(lfw_root), "--cache", str(cache_dir), "--json"]
    assert main(["pairs", "--data", str(lfw_root), "--out", str(pairs), "--seed", "0"]) == 0
    model = root / "lfw-sface-nn"
    train = ["train", *common, "--pairs", str(pairs / "target_train.csv"), "--out", str(model)]
    assert main(train) == 0
    attack = ["attack", "membership", "--model", str(model), *common]
    attack += ["--members", str(pairs / "target_train.csv")]
    attack += ["--nonmembers", str(pairs / "target_test.csv")]
    attack += ["--attacker", str(pairs / "attacker.csv"), "--attacks", "blackbox-gb,rule-based"]
    results = root / "results.json"
    with results.open("w") as out, contextlib.redirect_stdout(out):
        assert main([*attack, "--plot", str(root / "roc.svg")]) == 0
    return {
        "results": json.loads(results.read_text()),
        "svg": (root / "roc.svg").read_text(),
        "model": model.name,
    }


def test_the_plot_title_names_the_model(attack_run):
    assert "Membership inference on lfw-sface-nn, pair level" in attack_run["svg"]


def test_a_decision_only_attack_is_a_point_and_the_legend_is_outside(attack_run):
    attacks = attack_run["results"]["attacks"]
    rule_roc = attacks["rule-based"]["roc"]
    point = decision_point(rule_roc["fpr"], rule_roc["tpr"])
    assert point is not None and 0 < point[0] < 1  # yes/no answers: one operating point
    assert decision_point(**attacks["blackbox-gb"]["roc"]) is None
    figure = roc_figure(attack_run["results"], attack_run["model"])
    axes = figure.axes[0]
    lines = {line.get_label().split(" (")[0]: line for line in axes.get_lines()}
    rule, scored = lines["rule-based"], lines["blackbox-gb"]
    assert rule.get_linestyle() == "None" and rule.get_marker() == "o"
    assert list(rule.get_xdata()) == [max(point[0], MIN_FPR)]
    assert list(rule.get_ydata()) == [point[1]]
    assert scored.get_linestyle() == "-" and len(scored.get_xdata()) > 3
    assert attack_run["model"] in axes.get_title()
    figure.draw_without_rendering()
    legend = axes.get_legend().get_window_extent()
    assert not legend.overlaps(axes.get_window_extent())
    assert figure.bbox.contains(legend.x0, legend.y0) and figure.bbox.contains(legend.x1, legend.y1)
