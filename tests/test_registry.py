"""One registry shape: duplicates refused, one-line errors, pattern listing, lazy built-ins,
and a defense added from a test module alone (the recipe in facebone/registry.py)."""

import subprocess
import sys

import pytest

from facebone.attacks import create_attack, list_attacks
from facebone.backbones import create_backbone, list_backbones, register_backbone
from facebone.embeddings import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.experiments import (
    DEFENSES,
    Defense,
    create_defense,
    create_regime,
    get_defense,
    list_defenses,
    list_regimes,
    register_defense,
)
from facebone.metrics import verification_metrics
from facebone.predictors import (
    CosinePredictor,
    create_predictor,
    get_predictor_class,
    list_predictors,
    register_predictor,
)
from facebone.registry import Registry
from facebone.system import FRSystem

PLUGIN = "cosine-dlib"


def test_a_repeated_name_is_refused_and_keeps_the_first():
    with pytest.raises(ValueError, match="'sface' is already registered"):
        register_backbone("sface")(lambda **kwargs: None)
    with pytest.raises(ValueError, match="'cosine' is already registered"):

        @register_predictor("cosine")
        class Other(CosinePredictor):
            pass

    with pytest.raises(ValueError, match="'none' is already registered"):
        register_defense("none")(lambda: Defense("none", "another"))
    assert get_predictor_class("cosine") is CosinePredictor
    assert get_defense("none").description.startswith("undefended")
    assert type(create_backbone("sface")).__name__ == "SFaceOpenCV"


@pytest.mark.parametrize(
    ("create", "name", "kind", "known"),
    [
        (create_backbone, "arcface", "backbone", "sface, dlib, onnx, iresnet18"),
        (create_predictor, "arcface-distance", "predictor", "cosine, euclidean"),
        (create_attack, "magic", "attack", "blackbox-gb, blackbox-rf"),
        (create_defense, "bogus", "defense", "none, multi-rr-random"),
        (create_regime, "overfit", "regime", "default, leaking"),
    ],
)
def test_unknown_name_is_one_line_listing_the_known(create, name, kind, known):
    with pytest.raises(FaceBoneError) as error:
        create(name)
    message = str(error.value)
    assert message.startswith(f"unknown {kind} {name!r}; choose from: {known}")
    assert "\n" not in message


def test_bad_arguments_are_one_line_errors_naming_them():
    with pytest.raises(FaceBoneError, match=r"bad arguments for predictor 'cosine'.*'epochs'"):
        create_predictor("cosine", epochs=3)
    with pytest.raises(FaceBoneError, match=r"bad arguments for backbone 'sface'.*'weights'"):
        create_backbone("sface:model.onnx")


def test_listing_keeps_definition_order_and_filters_by_pattern():
    assert list_attacks(family="membership") == [
        "blackbox-gb",
        "blackbox-rf",
        "blackbox-nn",
        "rule-based",
        "lira",
        "lira-online",
        "rmia",
        "label-only",
        "parameter",
    ]
    assert list_attacks("lira*") == ["lira", "lira-online"]
    assert list_attacks(family="inversion") == ["decoder", "optimise", "blackbox"]
    assert list_attacks(family="extraction") == ["surrogate"]
    assert list_attacks(family="attribute") == ["attribute-template", "attribute-blackbox"]
    assert list_backbones("iresnet*") == ["iresnet18", "iresnet34", "iresnet50", "iresnet100"]
    assert list_predictors("*distance*") == []
    assert list_defenses("dp-*") == ["dp-eps1", "dp-eps4", "dp-eps8"]
    assert list_regimes() == ["default", "leaking"]
    for name in list_defenses():
        assert create_defense(name).name == name
    for name in list_regimes():
        assert create_regime(name).name == name


def test_variants_get_their_defaults_and_the_seed_only_where_taken():
    forest = create_attack("blackbox-rf", seed=3)
    assert (forest.model, forest.seed) == ("rf", 3)
    assert create_attack("lira-online", seed=5).seed == 5
    assert create_attack("rule-based", seed=5).__class__.__name__ == "RuleBasedAttack"


def test_builtins_load_lazily_by_name_and_all_for_a_listing(tmp_path, monkeypatch):
    """A look-up imports only the modules whose pattern matches; a listing imports all and
    orders them as the registry names its modules, whatever imported first."""
    prefix = f"widgets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{prefix}_registry.py").write_text(
        "from facebone.registry import Registry\n"
        f"MODULES = {{'round*': '{prefix}_round', 'square': '{prefix}_square'}}\n"
        "WIDGETS = Registry('widget', MODULES)\n"
    )
    for module, names in (("round", ["round-small", "round-big"]), ("square", ["square"])):
        (tmp_path / f"{prefix}_{module}.py").write_text(
            f"from {prefix}_registry import WIDGETS\n"
            "class Widget:\n"
            "    def __init__(self, size):\n"
            "        self.size = size\n"
            + "".join(f"WIDGETS.register({n!r}, size={n!r})(Widget)\n" for n in names)
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = [f"{prefix}_{part}" for part in ("registry", "round", "square")]
    try:
        widgets = __import__(modules[0]).WIDGETS
        assert widgets.create("round-big").size == "round-big"
        assert widgets.create("round-big", size=3).size == 3
        assert modules[1] in sys.modules and modules[2] not in sys.modules
        assert "square" in widgets  # a miss on `round*` imports only `square`'s module
        __import__(modules[2])
        assert widgets.list() == ["round-small", "round-big", "square"]
        widgets.unregister("round-big")
        assert widgets.list("round*") == ["round-small"]
        with pytest.raises(FaceBoneError, match="unknown widget 'round-big'"):
            widgets.unregister("round-big")
    finally:
        for module in modules:
            sys.modules.pop(module, None)


def test_creating_sface_loads_neither_torch_nor_dlib():
    code = (
        "import sys\n"
        "from facebone.backbones import create_backbone\n"
        "create_backbone('sface')\n"
        "heavy = ('torch', 'dlib', 'facebone.backbones.iresnet')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_empty_registry_lists_nothing_and_says_so():
    empty: Registry[object] = Registry("gadget")
    assert empty.list() == [] and "x" not in empty and 3 not in empty
    with pytest.raises(FaceBoneError, match=r"unknown gadget 'x'; choose from: \.$"):
        empty.get("x")


@pytest.fixture
def plugin_defense():
    """A defense registered from this test module alone, forgotten afterwards so other tests
    see only the built-ins."""

    @register_defense(PLUGIN)
    def cosine_dlib() -> Defense:
        return Defense(PLUGIN, "dlib + cosine predictor", backbones=("dlib",), predictor="cosine")

    yield PLUGIN
    DEFENSES.unregister(PLUGIN)
    assert PLUGIN not in list_defenses()


@pytest.fixture
def dlib_embedder(cache_dir, lfw_embeddings):
    lfw_embeddings("dlib")  # every LFW image in the shared cache, so nothing is embedded here
    made = Embedder(["dlib"], EmbeddingCache(cache_dir), progress=False)
    yield made
    made.close()


def test_a_defense_from_one_module_deploys_on_real_faces(
    plugin_defense, dlib_embedder, lfw_root, protocol
):
    assert list_defenses()[-1] == plugin_defense
    assert list_defenses("cosine*") == [
        "cosine",
        "cosine-fusion",
        "cosine-fusion-ckks",
        "cosine-fusion-public",
        "cosine-fusion-decision",
        "cosine-fusion-hardened",
        "cosine-fusion-suppress",
        "cosine-dlib",
    ]
    defense = create_defense(plugin_defense)
    assert get_defense(plugin_defense) == defense and not defense.uses_nn
    params = defense.system_params({"epochs": 300}, seed=0)
    assert params["predictor_params"] == {} and params["backbones"] == ["dlib"]
    system = FRSystem(**params).fit(dlib_embedder, lfw_root, protocol["target_train"])
    test = protocol["target_test"]
    utility = verification_metrics([p.label for p in test], system.predict_proba(lfw_root, test))
    assert utility["accuracy"] >= 0.95, utility
