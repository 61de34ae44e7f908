"""Classical baselines: same folds and preprocessing as the deep models, options, errors, real data."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_table

from mmt_tune import train as train_cli
from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.training.crossval import train_configuration


@pytest.mark.parametrize(
    "model, options",
    [("logreg", {"C": 0.5}), ("logreg", {"l1_ratio": 0.5}), ("forest", {"n_estimators": 50})],
)
def test_baselines_score_the_same_folds_as_a_deep_model(model, options):
    table = make_table(90, signal={"DWI": 1.2})
    baseline = train_configuration(table, TrainConfig.from_options(model, ("DWI",), options, folds=3, seed=2))
    deep = train_configuration(
        table,
        TrainConfig.from_options("mfnvae", ("DWI",), {"latent": 8, "hidden": 16}, epochs=2, folds=3, seed=2),
    )
    # Same rows in the same folds, same SMOTE output size: the comparison is paired.
    assert baseline.predictions[["row", "fold", "label"]].equals(deep.predictions[["row", "fold", "label"]])
    assert baseline.folds[["n_train", "n_synthetic", "n_val"]].equals(
        deep.folds[["n_train", "n_synthetic", "n_val"]]
    )
    assert baseline.folds["auc"].mean() > 0.7, "a planted d=1.2 signal is found"
    assert baseline.losses.empty


def test_baselines_use_only_the_present_modalities_and_are_seeded():
    table = make_table(90, signal={"DWI": 1.2})
    config = TrainConfig.from_options("forest", ("DWI",), {"n_estimators": 30}, folds=3)
    a = train_configuration(table, config)
    changed = table.copy()
    t1 = [c for c in table.columns if c.startswith("T1WI__")]
    changed[t1] = changed[t1] * -3 + 11
    b = train_configuration(changed, config)
    np.testing.assert_array_equal(a.predictions["probability"], b.predictions["probability"])
    other_seed = train_configuration(
        table, TrainConfig.from_options("forest", ("DWI",), {"n_estimators": 30}, folds=3, seed=1)
    )
    assert not np.array_equal(a.predictions["probability"], other_seed.predictions["probability"])


def test_a_stronger_penalty_shrinks_the_logistic_regression():
    """C reaches the estimator: a tiny C pulls every probability towards the (SMOTE-balanced) prior."""
    table = make_table(90, signal={"DWI": 1.5})
    spread = {}
    for c in (1e-4, 10.0):
        result = train_configuration(table, TrainConfig.from_options("logreg", ("DWI",), {"C": c}, folds=3))
        spread[c] = result.predictions["probability"].std()
    assert spread[1e-4] < 0.01 < spread[10.0]


@pytest.mark.parametrize(
    "model, options, message",
    [
        ("logreg", {"lr": 0.1}, "unknown option 'lr' for logreg"),
        ("logreg", {"epochs": 5}, "unknown option 'epochs' for logreg"),
        ("forest", {"C": 1.0}, "unknown option 'C' for forest"),
        ("logreg", {"beta": 0.5}, "unknown option 'beta' for logreg"),
        ("logreg", {"C": 0}, "logreg: C must be positive"),
        ("logreg", {"l1_ratio": 1.5}, "l1_ratio must be in [0, 1]"),
        ("forest", {"max_features": 2.0}, "max_features must be sqrt, log2 or a fraction"),
        ("mmt1m", {"C": 1.0}, "unknown option 'C' for mmt1m"),
    ],
)
def test_options_that_do_not_apply_are_errors_naming_the_key(model, options, message):
    present = ("DWI",)
    with pytest.raises(InputError) as info:
        TrainConfig.from_options(model, present, options)
    assert message in str(info.value)


def test_cli_trains_a_baseline(tmp_path, capsys):
    from mmt_tune.data.table import write_feature_table

    path = tmp_path / "features.parquet"
    write_feature_table(make_table(60, signal={"DWI": 1.0}), path, {})
    assert (
        train_cli.main(
            [
                "--features",
                str(path),
                "--model",
                "logreg",
                "--present",
                "DWI",
                "--folds",
                "3",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "logreg present=DWI" in out and "mean ± std" in out
    assert (tmp_path / "out" / "predictions.csv").is_file()
    assert (
        train_cli.main(["--features", str(path), "--model", "logreg", "--present", "DWI", "--epochs", "5"])
        == 2
    )
    assert "unknown option 'epochs' for logreg" in capsys.readouterr().err


def test_on_real_data_the_baselines_separate_breast_cancer():
    """Sanity on scikit-learn's breast-cancer table: the 'worst' features (DWI here) are near-separable."""
    from mmt_tune.data.public import breast_cancer_table

    table = breast_cancer_table()
    assert len(table) == 569 and table["label"].sum() == 212
    for model in ("logreg", "forest"):
        result = train_configuration(table, TrainConfig.from_options(model, ("DWI",), {}, folds=3))
        assert result.folds["auc"].mean() > 0.97, model


@pytest.mark.parametrize("model", ["logreg", "mmt1m"])
def test_a_twelve_patient_cohort_trains_with_fewer_smote_neighbours(model):
    """Borderline-SMOTE's danger-zone neighbours (10) exceed a small fold's rows; they shrink to fit."""
    table = make_table(12, signal={"DWI": 1.0}, positive_fraction=0.4)
    options = {"k": 4, **({"epochs": 2} if model == "mmt1m" else {})}
    result = train_configuration(table, TrainConfig.from_options(model, ("DWI",), options, folds=3))
    assert len(result.predictions) == 12 and (result.folds["n_synthetic"] > 0).all()
