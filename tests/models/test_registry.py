"""The model registry: a model registered from outside the package trains and runs in a study unchanged."""

from __future__ import annotations

import pytest
from helpers import make_table

from mmt_tune import models
from mmt_tune.config import TrainConfig, accepted_options
from mmt_tune.errors import InputError


def toy_spec(name: str = "toy") -> models.ModelSpec:
    """A packed linear classifier on the present modalities, defined inside a function so that Ray
    pickles it by value (a worker has no module to import it from)."""
    import torch
    from torch import nn

    from mmt_tune.models.blocks import Linear, NoiseSource

    class Toy(nn.Module):
        def __init__(self, n_models, feature_dims, present, scale):
            super().__init__()
            self.present = [m for m in feature_dims if m in present]
            self.noise = NoiseSource()
            self.scale = float(scale)
            self.linear = Linear(n_models, sum(feature_dims[m] for m in self.present), 2)

        def forward(self, inputs):
            x = torch.cat([inputs[m] for m in self.present], dim=-1)
            return {"logits": self.scale * self.linear(x), "reconstructions": {}}

    def build(n_models, feature_dims, present, options):
        return Toy(n_models, feature_dims, present, **options)

    return models.ModelSpec(
        name=name,
        label="Toy linear",
        colour="#937860",
        role="proposed",
        options={"scale": 1.0},
        terms=("classification",),
        default_lr=1e-2,
        build=build,
    )


@pytest.fixture
def toy():
    spec = models.register(toy_spec())
    yield spec
    models.unregister(spec.name)


def test_a_registered_model_trains_and_learns(toy):
    from mmt_tune.training.crossval import train_configuration

    assert accepted_options("toy") >= {"scale", "beta", "lr", "k"}
    assert "alpha_<MOD>" not in accepted_options("toy"), "no reconstruction term, no reconstruction weight"
    config = TrainConfig.from_options("toy", ["T1WI"], {"epochs": 30, "folds": 3, "k": 4, "scale": 2.0})
    assert config.lr == 1e-2 and config.model_options == {"scale": 2.0}
    with pytest.raises(InputError, match="unknown option 'gamma' for toy"):
        TrainConfig.from_options("toy", ["T1WI"], {"gamma": 1.0})
    result = train_configuration(make_table(150, signal={"T1WI": 2.0}), config)
    assert set(result.losses.columns) >= {"classification", "total"}
    assert result.summary()["auc"][0] > 0.8  # a planted signal of d = 2 on T1WI


def test_registry_rejects_an_ill_formed_spec():
    spec = toy_spec("bad")
    with pytest.raises(ValueError, match="unknown loss term"):
        models.register(models.ModelSpec(**{**spec.__dict__, "terms": ("hinge",)}))
    with pytest.raises(ValueError, match="exactly one of build"):
        models.register(models.ModelSpec(**{**spec.__dict__, "estimator": lambda o, r: None}))
    with pytest.raises(ValueError, match="already registered"):
        models.register(models.ModelSpec(**{**models.get("mmt2m").__dict__, "label": "other"}))
    assert "bad" not in models.names()


def test_every_shipped_model_is_described():
    for name in models.names():
        spec = models.get(name)
        assert spec.label and spec.colour.startswith("#") and spec.role in models.ROLES
        assert spec.baseline == (spec.role == "baseline")
    assert models.HEADLINE[0] in models.with_role("proposed")
    assert models.HEADLINE[1] in models.with_role("reference")


def test_a_registered_model_runs_in_a_one_trial_study(toy, ray_local, tmp_path):
    """The toy model reaches the Ray worker through the launcher (its spec travels with the trainable):
    no other module knows it."""
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.entry import run_study

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(90, signal={"DWI": 2.0}), features, {})
    space = tmp_path / "toy.yaml"
    space.write_text(
        "name: toy\n"
        "configurations:\n  - {model: toy, present: [DWI]}\n"
        "parameters:\n  scale: {distribution: uniform, low: 0.5, high: 2.0}\n"
        "fixed: {epochs: 5, folds: 2, k: 4}\n"
    )
    result = run_study(space, features, samples=1, storage=tmp_path / "results", wandb="off", verbose=0)
    assert result.failed_configurations() == [], result.errors
    assert (result.trials["model"] == "toy").all() and (result.trials["status"] == "ok").all()
    assert "config/scale" in result.trials.columns and "config/seed" not in result.trials.columns


def test_the_study_command_is_quiet_names_each_failed_trial_and_points_to_the_report(
    ray_local, tmp_path, capsys
):
    """Default output: a progress bar, the best trials and where to look next; a trial that fails is one
    `error:` line with its configuration and first error, and a configuration without a finished trial
    makes the command exit 1."""
    from dataclasses import replace

    from mmt_tune import run
    from mmt_tune.data.table import write_feature_table

    def broken(n_models, feature_dims, present, options):
        raise RuntimeError("this model cannot be built")

    spec = models.register(replace(toy_spec("broken"), build=broken))
    try:
        features = tmp_path / "features.parquet"
        write_feature_table(make_table(90, signal={"DWI": 2.0}), features, {})
        space = tmp_path / "two.yaml"
        space.write_text(
            "name: two\n"
            "configurations:\n  - {model: logreg, present: [DWI]}\n  - {model: broken, present: [DWI]}\n"
            "parameters:\n  C: {distribution: loguniform, low: 0.01, high: 1.0}\n"
            "  scale: {distribution: uniform, low: 0.5, high: 2.0}\n"
            "fixed: {folds: 2, k: 4}\n"
        )
        argv = ["--space", str(space), "--features", str(features), "--storage", str(tmp_path / "r")]
        code = run.main([*argv, "--num-samples", "2", "--wandb", "off"])
    finally:
        models.unregister(spec.name)
    out, err = capsys.readouterr()
    assert code == 1
    assert "== Status ==" not in out and len(out.splitlines()) < 15, out
    assert f"report:       python -m analysis.report {tmp_path / 'r' / 'two'}" in out
    failures = [line for line in err.splitlines() if "(broken/DWI) failed: RuntimeError: this model" in line]
    assert len(failures) == 2 and all(line.startswith("error: trial ") for line in failures), err
    assert "no trial of 1 configuration(s) completed (broken/DWI)" in err


def test_a_study_records_its_data_without_identifiers(toy, ray_local, tmp_path):
    """data.json: counts, class balance, modalities and hashes of the feature table, not the phantom; no
    patient ID, path or date. The report states it."""
    import json

    from mmt_tune.analysis.report import write_report
    from mmt_tune.analysis.results import load_study
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.entry import run_study

    table = make_table(90, signal={"DWI": 2.0})
    features = tmp_path / "features.parquet"
    write_feature_table(table, features, {"pyradiomics_version": "3.1.0", "settings_sha256": "ab" * 32})
    space = tmp_path / "toy.yaml"
    space.write_text(
        "name: toy\nconfigurations:\n  - {model: toy, present: [DWI]}\n"
        "parameters:\n  scale: {distribution: uniform, low: 0.5, high: 2.0}\nfixed: {epochs: 3, folds: 2, k: 4}\n"
    )
    result = run_study(space, features, samples=1, storage=tmp_path / "results", wandb="off", verbose=0)
    text = (result.experiment / "data.json").read_text()
    data = json.loads(text)
    assert data["phantom"] is False and data["rows"] == 90 and data["positives"] == int(table["label"].sum())
    assert data["pyradiomics_version"] == "3.1.0" and data["features_per_modality"]["DWI"] == 12
    assert not any(pid in text for pid in table["patient_id"]) and str(tmp_path) not in text
    report = write_report(load_study(result.experiment), tmp_path / "report", progress=False)
    page = report.index.read_text()
    assert "PHANTOM" not in page and "Data: 90 rows (90 patients)" in page
