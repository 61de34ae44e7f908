"""Every shipped search space loads; malformed ones fail with one error naming the file and key."""

from __future__ import annotations

import pytest

from mmt_tune.errors import InputError
from mmt_tune.spaces import SHIPPED_DIR, load_space, shipped_spaces

# The paper's 13 configurations, plus a logistic regression and a random forest on each of the 7 subsets.
EXPECTED_CONFIGURATIONS = {"mmt1m": 3, "mmt2m": 3, "mfnvae": 7, "paper": 27, "paper-wide": 27, "demo": 27}


@pytest.mark.parametrize("name", shipped_spaces())
def test_every_shipped_space_loads_and_translates(name):
    space = load_space(name)
    assert len(space.configurations) == EXPECTED_CONFIGURATIONS[name]
    for configuration in space.configurations:
        assert configuration.parameters, configuration.key
        assert set(configuration.optuna_distributions()) == set(configuration.parameters)
        assert set(configuration.tune_space()) == set(configuration.parameters)


def test_all_shipped_files_are_covered():
    assert set(shipped_spaces()) == set(EXPECTED_CONFIGURATIONS), "add new shipped spaces to this test"
    assert len(list(SHIPPED_DIR.glob("*.yaml"))) == len(EXPECTED_CONFIGURATIONS)


def test_parameters_are_expanded_per_configuration_with_the_papers_ranges():
    paper = load_space("paper")
    one = paper.configuration("mmt1m/T1WI")
    assert set(one.parameters) == {"lr", "alpha_FLAIR", "alpha_DWI", "beta", "gamma"}
    lr = one.parameters["lr"]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("loguniform", 1e-6, 1e-5, True)
    assert (one.parameters["beta"].low, one.parameters["beta"].high) == (0.1, 1.0)
    assert set(paper.configuration("mmt2m/T1WI+DWI").parameters) == {"lr", "alpha_FLAIR", "beta"}
    assert set(paper.configuration("mfnvae/T1WI+FLAIR").parameters) == {
        "lr",
        "alpha_T1WI",
        "alpha_FLAIR",
        "beta",
        "kl_weight",
    }
    wide = load_space("paper-wide")
    assert "interaction" in wide.configuration("mmt2m/FLAIR+DWI").parameters
    assert "interaction" not in wide.configuration("mfnvae/DWI").parameters
    assert one.fixed == {"epochs": 200, "batch_size": 32}


@pytest.mark.parametrize("name", ["paper", "paper-wide", "demo"])
def test_every_deep_configuration_has_both_baselines_on_its_modalities_at_the_same_budget(name):
    space = load_space(name)
    subsets = {c.present for c in space.configurations if c.model not in ("logreg", "forest")}
    for baseline in ("logreg", "forest"):
        assert {c.present for c in space.configurations if c.model == baseline} == subsets
    logreg = space.configuration("logreg/T1WI+DWI")
    assert set(logreg.parameters) == {"C", "l1_ratio", "k"}
    # Same folds as the deep models (demo: 3), none of their training options (epochs, batch size).
    deep = space.configuration("mmt2m/T1WI+DWI").fixed
    assert logreg.fixed == {k: v for k, v in deep.items() if k == "folds"}
    assert logreg.parameters["C"].log
    forest = space.configuration("forest/DWI")
    assert set(forest.parameters) == {"max_depth", "min_samples_leaf", "max_features", "k"}
    # k is scoped to the baselines (models: [...]); the deep models keep the default k.
    assert "k" not in space.configuration("mmt1m/DWI").parameters


def test_a_parameter_scoped_to_models_applies_only_to_them(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        GOOD.replace(
            "  - {model: mmt1m, present: [T1WI]}",
            "  - {model: mmt1m, present: [T1WI]}\n  - {model: logreg, present: [T1WI]}",
        )
        + "  k: {distribution: int, low: 4, high: 8, models: [logreg]}\n"
        + "  C: {distribution: loguniform, low: 0.01, high: 1}\n"
    )
    space = load_space(path)
    assert set(space.configuration("logreg/T1WI").parameters) == {"k", "C"}
    assert set(space.configuration("mmt1m/T1WI").parameters) == {"lr"}
    path.write_text(GOOD + "  k: {distribution: int, low: 4, high: 8, models: [svm]}\n")
    with pytest.raises(InputError, match=r"parameters.k.models: expected a list of models"):
        load_space(path)


def test_translation_to_optuna_and_tune_keeps_bounds_and_scale():
    from optuna.distributions import FloatDistribution
    from ray.tune.search.sample import Float

    configuration = load_space("mmt1m").configuration("mmt1m/DWI")
    optuna_lr = configuration.optuna_distributions()["lr"]
    assert optuna_lr == FloatDistribution(1e-6, 1e-5, log=True)
    tune_lr = configuration.tune_space()["lr"]
    assert isinstance(tune_lr, Float) and (tune_lr.lower, tune_lr.upper) == (1e-6, 1e-5)


GOOD = """
configurations:
  - {model: mmt1m, present: [T1WI]}
parameters:
  lr: {distribution: loguniform, low: 1.0e-6, high: 1.0e-5}
"""


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD + "trials: 3\n", "trials: unknown key"),
        (
            GOOD.replace("loguniform, low: 1.0e-6", "loguniform, low: 1.0e-4"),
            "parameters.lr: low (0.0001) must be smaller",
        ),
        (GOOD.replace("low: 1.0e-6", "low: 0"), "parameters.lr.low: a loguniform distribution needs low > 0"),
        (GOOD.replace("loguniform", "normal"), "parameters.lr.distribution: 'normal' is not one of"),
        (GOOD.replace("high: 1.0e-5}", "high: 1.0e-5, step: 2}"), "parameters.lr.step: unknown key"),
        (GOOD.replace("model: mmt1m", "model: mmt9m"), "configurations[0]: unknown model 'mmt9m'"),
        (
            "modalities: [T1WI, FLAIR, DWI]\n" + GOOD.replace("[T1WI]", "[T1WI, PET]"),
            "configurations[0].present: unknown modality 'PET'",
        ),
        (GOOD.replace("[T1WI]", "[T1WI, DWI]"), "configurations[0]: mmt1m needs exactly 1 present modality"),
        (
            GOOD + "  lrr: {distribution: uniform, low: 0.1, high: 1}\n",
            "parameters.lrr: not an option of any model",
        ),
        (
            GOOD.replace("present: [T1WI]", "present: every, missing: x"),
            "configurations[0].missing: expected",
        ),
        (GOOD.replace("present: [T1WI]}", "present: [T1WI], missing: 1}"), "only a rule (present: every)"),
        (
            GOOD.replace("{model: mmt1m, present: [T1WI]}", "{model: [mmt1m, mlp], present: every}"),
            "configurations[0].model: unknown model 'mlp'",
        ),
        (GOOD + "fixed:\n  epochz: 3\n", "fixed.epochz: not an option"),
        (
            GOOD.replace("{distribution: loguniform, low: 1.0e-6, high: 1.0e-5}", "{distribution: choice}"),
            "parameters.lr: a choice needs a non-empty 'values' list",
        ),
        ("configurations: [\n", "not valid YAML (line 2"),
    ],
)
def test_malformed_spaces_fail_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_space(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_duplicate_configuration(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(
        GOOD.replace(
            "  - {model: mmt1m, present: [T1WI]}\n",
            "  - {model: mmt1m, present: [T1WI]}\n  - {model: mmt1m, present: [T1WI]}\n",
        )
    )
    with pytest.raises(InputError, match=r"configurations\[1\]: duplicate of configurations\[0\]"):
        load_space(path)


def test_unknown_space_name_lists_the_shipped_ones():
    with pytest.raises(InputError, match="unknown search space 'nope'.*mmt1m"):
        load_space("nope")


def test_a_folder_named_like_a_shipped_space_does_not_shadow_it(tmp_path, monkeypatch):
    """The demo writes to ./demo and then loads the shipped space `demo`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    assert load_space("demo").name == "demo"


def test_space_json_round_trips_every_distribution(tmp_path):
    """One distribution class from the YAML to the importance engines: what a study writes to space.json
    reads back as the same distributions (bounds, scale, choices) the sampler used."""
    from dataclasses import replace

    from mmt_tune.analysis.results import read_space
    from mmt_tune.records import write_space

    for name in ("paper", "paper-wide", "demo"):
        space = load_space(name)
        write_space(space, tmp_path)
        back = read_space(tmp_path / "space.json")
        assert set(back) == {c.key for c in space.configurations}
        for configuration in space.configurations:
            expected = {k: replace(d, models=None) for k, d in configuration.parameters.items()}
            assert back[configuration.key] == expected
    lr = load_space("paper").configurations[0].parameters["lr"]
    assert lr.log and lr.encode([lr.low, lr.high]).tolist() == list(lr.encoded_bounds)


def test_a_space_over_other_sequences_loads_without_a_table_and_finds_configurations_in_any_order(tmp_path):
    from mmt_tune.spaces import load_space

    path = tmp_path / "mening.yaml"
    path.write_text(
        "name: mening\nconfigurations:\n"
        "  - {model: mfnvae, present: [T1, FLAIR]}\n  - {model: logreg, present: [FLAIR]}\n"
        "parameters:\n  lr: {distribution: loguniform, low: 1.0e-5, high: 1.0e-3}\n"
        "  C: {distribution: loguniform, low: 0.01, high: 1.0}\n"
    )
    space = load_space(path)  # no table: the sequences its configurations name
    assert space.modalities == ("T1", "FLAIR")
    assert space.configuration("mfnvae/FLAIR+T1") is space.configuration("mfnvae/T1+FLAIR")
    with pytest.raises(KeyError):
        space.configuration("mfnvae/T1")
    assert load_space("paper").modalities == ("T1WI", "FLAIR", "DWI")  # the paper's names: the paper's order
