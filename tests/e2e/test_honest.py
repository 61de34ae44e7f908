"""Honest numbers: repeated CV, nested CV, test-time modality subsets, ROC consistent with Table 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_table

MODS = ("T1WI", "FLAIR", "DWI")


pytestmark = pytest.mark.usefixtures("one_thread")


def test_repeats_add_seeded_splits_and_leave_the_first_repeat_unchanged():
    from mmt_tune.config import TrainConfig
    from mmt_tune.training.crossval import train_configuration

    table = make_table(90, signal={"DWI": 1.5})
    one = train_configuration(table, TrainConfig.from_options("mfnvae", MODS, {"epochs": 2, "folds": 3}))
    two = train_configuration(
        table, TrainConfig.from_options("mfnvae", MODS, {"epochs": 2, "folds": 3, "repeats": 2})
    )
    assert list(two.folds["fold"]) == list(range(6)) and list(two.folds["repeat"]) == [0, 0, 0, 1, 1, 1]
    first = two.folds[two.folds["repeat"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(first.drop(columns="repeat"), one.folds.drop(columns="repeat"))
    # every row is predicted once per repeat, and the second repeat's folds are other splits
    assert two.predictions.groupby("row").size().eq(2).all()
    by_repeat = two.predictions.pivot_table(index="row", columns="repeat", values="fold")
    assert not (by_repeat[0] == by_repeat[1] - 3).all()


def test_subsets_score_the_trained_folds_and_the_full_set_equals_the_cv_scores():
    from mmt_tune.config import TrainConfig
    from mmt_tune.errors import InputError
    from mmt_tune.training.crossval import train_configuration

    table = make_table(90, signal={"DWI": 1.5})
    config = TrainConfig.from_options("mfnvae", MODS, {"epochs": 3, "folds": 3})
    result = train_configuration(table, config, subsets=[("DWI",), ("T1WI", "FLAIR"), MODS])
    full = result.subset_folds[result.subset_folds["subset"] == "T1WI+FLAIR+DWI"]
    np.testing.assert_array_equal(full["auc"].to_numpy(), result.folds["auc"].to_numpy())
    assert set(result.subset_folds["subset"]) == {"DWI", "T1WI+FLAIR", "T1WI+FLAIR+DWI"}
    mmt = TrainConfig.from_options("mmt2m", ("T1WI", "DWI"), {"epochs": 1, "folds": 3})
    with pytest.raises(InputError, match="cannot score a subset"):
        train_configuration(table, mmt, subsets=[("DWI",)])


def test_modality_dropout_changes_training_only_when_asked_and_is_checked():
    from mmt_tune.config import TrainConfig
    from mmt_tune.errors import InputError
    from mmt_tune.training.crossval import train_configuration

    table = make_table(60, signal={"DWI": 1.5})

    def folds(**options):
        config = TrainConfig.from_options("mfnvae", MODS, {"epochs": 3, "folds": 2, **options})
        return train_configuration(table, config).folds["auc"].to_numpy()

    np.testing.assert_array_equal(folds(), folds(modality_dropout=0.0))
    assert not np.array_equal(folds(), folds(modality_dropout=0.5))
    with pytest.raises(InputError, match="modality_dropout must be in"):
        TrainConfig.from_options("mfnvae", MODS, {"modality_dropout": 1.0})


NULL_SPACE = (
    "name: null-study\n"
    "configurations:\n"
    "  - {model: logreg, present: [T1WI]}\n"
    "  - {model: logreg, present: [FLAIR]}\n"
    "  - {model: logreg, present: [DWI]}\n"
    "  - {model: logreg, present: [T1WI, FLAIR, DWI]}\n"
    "parameters:\n"
    "  C: {distribution: loguniform, low: 1.0e-3, high: 10.0}\n"
    "  k: {distribution: int, low: 2, high: 12}\n"
)


@pytest.mark.slow
def test_nested_cv_on_null_labels_stays_near_chance_while_the_best_of_many_does_not(ray_local, tmp_path):
    """Labels independent of every feature: the best trial of the best configuration, scored on the folds
    that chose it, looks better than chance; the nested estimate of the same search does not."""
    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.results import load_study
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.entry import run_study

    write_feature_table(make_table(120, signal=None, seed=5), tmp_path / "null.parquet", {})
    (tmp_path / "space.yaml").write_text(NULL_SPACE)
    # One trial at a time (2 CPUs each on the 2-CPU test cluster): TPE sees the same history in every run,
    # so the test is deterministic rather than dependent on which parallel trial finishes first.
    options = {
        "samples": 6,
        "folds": 3,
        "wandb": "off",
        "verbose": 0,
        "storage": tmp_path / "results",
        "cpus_per_trial": 2,
    }
    flat = run_study(tmp_path / "space.yaml", tmp_path / "null.parquet", name="flat", **options)
    nested = run_study(
        tmp_path / "space.yaml", tmp_path / "null.parquet", name="nested", outer_folds=3, **options
    )
    best_of_many = flat.best()["auc_mean"].max()
    honest = nested.nested["test_auc"].mean()
    assert abs(honest - 0.5) < 0.08
    assert best_of_many > honest + 0.05
    print(f"null labels: best of many {best_of_many:.3f}, nested {honest:.3f}")
    # the trials table carries the outer fold; every outer fold ran the whole space
    trials = pd.read_parquet(nested.experiment / "trials.parquet")
    assert trials.groupby("outer_fold")["trial_id"].nunique().tolist() == [24, 24, 24]
    assert set(nested.nested["outer_fold"]) == {0, 1, 2} and len(nested.nested) == 12
    # Table 2 of a nested study: outer scores with the optimism beside them
    table2 = aggregate(load_study(nested.experiment)).table2()
    assert {"Non-nested AUC", "Optimism", "AUC 95% CI"} <= set(table2.columns)
    # --resume after it finished: the scored outer folds are kept, not recomputed
    before = (nested.experiment / "nested.csv").read_text()
    again = run_study(
        tmp_path / "space.yaml",
        tmp_path / "null.parquet",
        name="nested",
        outer_folds=3,
        resume=True,
        **options,
    )
    assert (nested.experiment / "nested.csv").read_text() == before and len(again.nested) == 12


@pytest.mark.slow
def test_robustness_on_the_phantom_ranks_the_modalities_as_planted(ray_local, tmp_path):
    """The phantom plants its class signal mostly in DWI and T1WI: with one full-modality MFN-VAE and the
    others dropped at test time, FLAIR alone scores lowest. The report carries the table, the heat map,
    roc.csv (whose AUCs are Table 2's) and performance.json."""
    from mmt_tune.analysis.metrics import aggregate, write_metrics
    from mmt_tune.analysis.results import load_study
    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.study.entry import run_study

    space = tmp_path / "space.yaml"
    space.write_text(
        "name: robust\nconfigurations:\n  - {model: mfnvae, present: [T1WI, FLAIR, DWI]}\n"
        "  - {model: mmt1m, present: [DWI]}\n"
        "parameters:\n  lr: {distribution: loguniform, low: 1.0e-4, high: 1.0e-3}\nfixed: {epochs: 60}\n"
    )
    result = run_study(
        space,
        phantom_features(progress=False),
        samples=1,
        wandb="off",
        verbose=0,
        storage=tmp_path / "results",
        modality_dropout=0.5,
    )
    robust = result.robustness
    assert set(robust["variant"]) == {"dropped at test", "modality dropout 0.5"}
    auc = robust[robust["variant"] == "dropped at test"].groupby("subset")["auc"].mean()
    assert auc["FLAIR"] < min(auc["DWI"], auc["T1WI"])
    assert auc["T1WI+FLAIR+DWI"] > auc["FLAIR"]

    study = load_study(result.experiment)
    metrics = aggregate(study)
    out = tmp_path / "analysis"
    write_metrics(metrics, study, out)
    table = (out / "robustness.md").read_text()
    assert "MFN-VAE (all), dropped at test" in table and "Worst drop vs all" in table
    assert (out / "robustness.png").is_file()
    roc = pd.read_csv(out / "roc.csv")
    for _, row in metrics.best.iterrows():
        curve = roc[(roc["model"] == row["model"]) & (roc["present"] == row["present"])]
        assert curve["auc_mean"].iloc[0] == pytest.approx(row["auc_mean"])  # the legend's AUC is Table 2's
    assert (
        "patient_id" not in roc.columns
        and not roc.astype(str).apply(lambda c: c.str.startswith("PH")).any().any()
    )
    performance = json.loads((out / "performance.json").read_text())
    entry = performance["configurations"][0]
    assert entry["folds"] == 5 and entry["repeats"] == 1 and entry["metrics"]["auc"]["n_scores"] == 5
    low, high = entry["metrics"]["auc"]["ci95"]
    assert low <= entry["metrics"]["auc"]["mean"] <= high
    assert performance["n"] == 279 and 0 < performance["prevalence"] < 1


def test_a_study_with_repeats_records_every_split_and_resumes_only_with_the_same_repeats(ray_local, tmp_path):
    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.results import load_study
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.errors import InputError
    from mmt_tune.study.entry import run_study

    write_feature_table(make_table(80, signal={"DWI": 1.5}), tmp_path / "t.parquet", {})
    (tmp_path / "space.yaml").write_text(
        "name: rep\nconfigurations:\n  - {model: logreg, present: [DWI]}\n"
        "parameters:\n  C: {distribution: loguniform, low: 1.0e-2, high: 1.0}\n"
    )
    options = {
        "samples": 2,
        "folds": 3,
        "repeats": 2,
        "wandb": "off",
        "verbose": 0,
        "storage": tmp_path / "r",
    }
    result = run_study(tmp_path / "space.yaml", tmp_path / "t.parquet", **options)
    trials = result.trials
    assert trials.groupby("trial_id")["fold"].apply(sorted).tolist() == [list(range(6))] * 2
    assert sorted(trials["repeat"].unique()) == [0, 1] and (trials["config/repeats"] == 2).all()
    best = aggregate(load_study(result.experiment)).best.iloc[0]
    assert best["n_folds"] == 6 and best["auc_ci_low"] < best["auc_mean"] < best["auc_ci_high"]
    with pytest.raises(InputError, match="--repeats"):
        run_study(
            tmp_path / "space.yaml", tmp_path / "t.parquet", **{**options, "repeats": 3, "resume": True}
        )
