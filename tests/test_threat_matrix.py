"""The verdict across the four threats: each family's strongest attack against its goal and
chance level, and a deployment that holds only when every family was attacked and held."""

from facebone.experiments.threat_matrix import (
    FAILS,
    MEETS,
    REPORTED,
    WITHIN_CHANCE,
    threat_cells,
    threat_matrix,
)
from facebone.studies.records import ThreatKey, ThreatRecord


def _record(system, family, attack, setting, seed, value, chance, goal):
    key = ThreatKey(system, "leaking", family, attack, setting, seed)
    return ThreatRecord(key, "figure", value, chance, goal, {}, 100)


def _membership(meets: bool, within: bool) -> dict:
    worst = {"mean": 0.51, "sd": 0.01, "n": 2, "attack": "lira-online", "level": "pair"}
    return {
        "accuracy": 0.998,
        "worst": {"auc": worst},
        "meets": meets,
        "meets_within_chance": within,
    }


def test_status_of_a_family_is_its_strongest_attack_against_goal_and_chance():
    records = (
        [
            _record("d", "attribute", "attribute-template", "stolen-store", s, v, 0.58, 0.55)
            for s, v in ((0, 0.50), (1, 0.52))
        ]
        + [
            _record("d", "attribute", "attribute-blackbox", "service", s, v, 0.62, 0.60)
            for s, v in ((0, 0.61), (1, 0.61))
        ]
        + [
            _record("d", "inversion", "decoder", "stolen-store", s, 0.02, 0.004, 0.005)
            for s in (0, 1)
        ]
        + [_record("d", "extraction", "surrogate", "budget 1000", 0, 0.99, 0.5, None)]
    )
    cells = threat_cells(records)[("leaking", "d")]
    # 0.61 through the service is over its goal 0.60 but under chance 0.62: the strongest
    # (closest to failing), and within chance.
    assert (cells["attribute"].attack, cells["attribute"].status) == (
        "attribute-blackbox",
        WITHIN_CHANCE,
    )
    assert cells["attribute"].n_seeds == 2 and abs(cells["attribute"].mean - 0.61) < 1e-12
    assert cells["inversion"].status == FAILS
    assert cells["extraction"].status == REPORTED


def test_a_deployment_holds_only_when_every_family_was_attacked_and_held():
    goal = {"defenses": {"d": {"regimes": {"leaking": _membership(True, True)}}}}
    held = [
        _record("d", "attribute", "attribute-template", "stolen-store", 0, 0.5, 0.58, 0.55),
        _record("d", "inversion", "decoder", "stolen-store", 0, 0.0, 0.004, 0.005),
    ]
    partial = threat_matrix(goal, held)[("leaking", "d")]
    assert not partial["holds"] and partial["missing"] == ["extraction"]
    copied = _record("d", "extraction", "surrogate", "budget 1000", 0, 1.0, 0.5, None)
    whole = threat_matrix(goal, [*held, copied])[("leaking", "d")]
    assert whole["holds"] and whole["cells"]["membership"].status == MEETS
    goal["defenses"]["d"]["regimes"]["leaking"] = _membership(False, False)
    assert not threat_matrix(goal, [*held, copied])[("leaking", "d")]["holds"]
