"""What decides results: the objective Tune maximises, the folds every trial shares, the best trial, the
threshold. Each test fails on a plausible one-line bug."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_table

from mmt_tune._internals import optuna_study
from mmt_tune.config import TrainConfig
from mmt_tune.metrics import METRICS, all_metrics
from mmt_tune.training.crossval import train_configuration

SMALL = {"d_model": 16, "hidden": 32, "k": 6}


def test_each_epoch_auc_ignores_the_padded_rows_of_shorter_folds():
    """91 rows in 3 folds: validation lengths 31/30/30, so two folds are padded inside the pack. The
    per-epoch AUC (ASHA's signal) must equal the AUC of the real out-of-fold predictions."""
    from mmt_tune.study.trial_io import epoch_auc

    table = make_table(91, signal={"DWI": 1.0})
    last = {}
    config = TrainConfig.from_options("mmt1m", ("DWI",), SMALL, epochs=3, folds=3)

    def keep(epoch, info):
        last["info"] = info

    result = train_configuration(table, config, on_epoch=keep)
    assert sorted(last["info"].val_counts) == [30, 30, 31]
    assert epoch_auc(last["info"]) == pytest.approx(result.folds["auc"].mean(), abs=1e-12)


def test_the_objective_is_the_mean_over_folds():
    from mmt_tune.study.trial_io import final_report

    table = make_table(90, signal={"DWI": 1.0})
    result = train_configuration(table, TrainConfig.from_options("logreg", ("DWI",), {}, folds=3))
    report = final_report(result)
    assert report["auc"] == pytest.approx(result.folds["auc"].mean())
    assert report["auc"] != result.folds["auc"].iloc[0], "fold 0 alone differs (the test can fail)"
    assert report["auc_std"] == pytest.approx(result.folds["auc"].std(ddof=0))
    assert report["epoch"] == 0 and report["done"]


def test_every_trial_of_a_study_sees_the_same_stratified_folds():
    """Folds depend on the study seed only, never on a trial's hyperparameters, and keep the class ratio."""
    table = make_table(100, signal={"DWI": 1.0}, positive_fraction=0.3)
    assignments = []
    for model, options in (("logreg", {"C": 0.01}), ("logreg", {"C": 5.0}), ("mmt1m", {**SMALL, "lr": 0.01})):
        extra = {"epochs": 1} if model == "mmt1m" else {}
        result = train_configuration(
            table, TrainConfig.from_options(model, ("DWI",), {**options, **extra}, seed=3)
        )
        assignments.append(result.predictions.set_index("row")["fold"])
    assert assignments[0].equals(assignments[1]) and assignments[0].equals(assignments[2])
    # Stratified: the folds' counts of positive rows differ by at most one (shuffled plain k-fold would
    # scatter them binomially).
    labels = table["label"].to_numpy()
    positives = [int(labels[rows.index].sum()) for _, rows in assignments[0].groupby(assignments[0])]
    assert max(positives) - min(positives) <= 1, positives
    other = train_configuration(table, TrainConfig.from_options("logreg", ("DWI",), {}, seed=4))
    assert not other.predictions.set_index("row")["fold"].equals(assignments[0])


def test_best_returns_the_highest_mean_over_folds_and_the_analysis_agrees():
    """One definition of the best trial: highest mean, ties to the smaller spread over folds, then the id;
    the launcher's summary and the analysis's Table 2 use it both."""
    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.results import Study
    from mmt_tune.study.options import StudyResult

    rows = []
    trials = {"low": [0.6, 0.62], "high": [0.8, 0.7], "steady": [0.75, 0.75], "middle": [0.7, 0.72]}
    for trial, aucs in trials.items():
        for fold, value in enumerate(aucs):
            rows.append(
                {
                    "model": "logreg",
                    "present": "DWI",
                    "trial_id": trial,
                    "fold": fold,
                    "status": "ok",
                    **{m: value for m in METRICS},
                }
            )
    rows.append(
        {
            "model": "logreg",
            "present": "DWI",
            "trial_id": "failed",
            "fold": None,
            "status": "error",
            **{m: np.nan for m in METRICS},
        }
    )
    table = pd.DataFrame(rows)
    best = StudyResult(None, table).best()
    assert best["trial_id"].tolist() == ["steady"], "a tie on the mean goes to the smaller spread"
    assert best["auc_mean"].item() == pytest.approx(0.75) and best["auc_std"].item() == 0.0
    table.loc[table["trial_id"] == "steady", "auc"] = [0.74, 0.74]
    assert StudyResult(None, table).best()["trial_id"].tolist() == ["high"]
    assert aggregate(Study("t", table), "auc").best["trial_id"].tolist() == ["high"]


def test_a_probability_of_exactly_one_half_is_a_positive_prediction():
    metrics = all_metrics(np.array([1, 0, 1, 0]), np.array([0.5, 0.49, 0.9, 0.1]))
    assert metrics["sensitivity"] == 1.0 and metrics["specificity"] == 1.0 and metrics["accuracy"] == 1.0


def test_the_study_maximises_its_objective():
    """Every configuration's Optuna study maximises the mean AUC, and so does the launcher's Tune config."""
    import inspect

    from mmt_tune.spaces import load_space
    from mmt_tune.study import launcher
    from mmt_tune.study.search import PerConfigurationSearch

    searcher = PerConfigurationSearch(load_space("mmt1m"), 2, seed=0)
    assert all(optuna_study(s).direction.name == "MAXIMIZE" for s in searcher.studies.values())
    assert (searcher.metric, searcher.mode) == ("auc", "max")
    source = inspect.getsource(launcher._tuner)
    assert 'metric="auc",\n            mode="max",' in source and 'mode="min"' not in source


def test_the_trials_table_has_one_row_per_fold_with_the_trial_s_own_metrics(tmp_path):
    """Fast (no Ray): what the launcher writes for finished, failed and early-stopped trials."""
    from mmt_tune.records import TrialRecord, trials_table
    from mmt_tune.study.trial_io import final_report

    table = make_table(90, signal={"DWI": 1.0})
    result = train_configuration(table, TrainConfig.from_options("logreg", ("DWI",), {"C": 0.3}, folds=3))
    config = {
        "configuration": "logreg/DWI",
        "model": "logreg",
        "present": ["DWI"],
        "C": 0.3,
    }
    records = [
        TrialRecord(config, {**final_report(result), "trial_id": "t1"}, False, tmp_path / "t1"),
        TrialRecord(config, {"trial_id": "t2"}, True, tmp_path / "t2"),
        TrialRecord(config, {"trial_id": "t3", "auc": 0.6}, False, tmp_path / "t3"),
    ]
    trials = trials_table(records, "study")
    assert trials["status"].tolist() == ["ok", "ok", "ok", "error", "stopped"]
    done = trials[trials["trial_id"] == "t1"].reset_index(drop=True)
    for metric in METRICS:
        np.testing.assert_allclose(done[metric], result.folds[metric])
    assert done["fold"].tolist() == [0, 1, 2] and (done["present"] == "DWI").all()
    assert (done["config/C"] == 0.3).all() and "config/configuration" not in trials.columns
    assert trials.loc[trials["status"] != "ok", list(METRICS)].isna().all().all()


def test_what_a_trial_sends_to_wandb_names_no_patient_path_or_machine(tmp_path):
    """Fast: a W&B offline run opened with the trial's privacy settings, logging what a trial logs."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import wandb

    from mmt_tune.study.tracking import privacy_settings

    run = wandb.init(
        project="p",
        dir=str(tmp_path),
        mode="offline",
        settings=privacy_settings(),
        config={"lr": 1e-5, "configuration": "mmt1m/DWI", "model": "mmt1m", "present": "DWI"},
    )
    run.log({"epoch": 0, "auc": 0.7, "train/total": 1.0})
    run.summary.update({"cv/auc": 0.7, "fold0/auc": 0.71})
    run.finish()
    # Stop this process's W&B service: left running, it is inherited (WANDB_SERVICE) by the studies later
    # tests start in subprocesses, and a killed study's run then stays "in use" there on resume.
    wandb.teardown()
    assert "WANDB_SERVICE" not in os.environ
    record_file = next(tmp_path.rglob("*.wandb"))
    record = record_file.read_bytes()
    inspected = subprocess.run(
        [str(Path(sys.executable).with_name("wandb")), "leet", "inspect", "--json", str(record_file.parent)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"host":"masked"' in inspected and f'"host":"{socket.gethostname()}"' not in inspected
    for needle in (socket.gethostname(), str(tmp_path), str(Path.home())):
        if len(needle) >= 4:  # a very short host name could appear in the binary record by chance
            assert needle.encode() not in record, needle


def test_the_device_auc_equals_scikit_learn_with_ties_padding_and_one_class_slices():
    import torch
    from sklearn.metrics import roc_auc_score

    from mmt_tune.study.trial_io import slice_auc

    rng = np.random.default_rng(0)
    scores = torch.tensor(np.round(rng.random((4, 30)), 1))  # rounded: many ties
    labels = torch.tensor((rng.random((4, 30)) < 0.4).astype(float))
    labels[3] = 0.0  # one class only
    counts = [30, 25, 17, 30]
    real = torch.arange(30)[None, :] < torch.tensor(counts)[:, None]
    got = slice_auc(scores, labels, real)
    for i, n in enumerate(counts[:3]):
        assert float(got[i]) == pytest.approx(roc_auc_score(labels[i, :n], scores[i, :n]), abs=1e-12)
    assert torch.isnan(got[3])
