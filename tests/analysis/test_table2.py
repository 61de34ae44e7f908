"""analysis.metrics and analysis.report: Table 2 from hand-built trials, paired comparisons, figures, index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mmt_tune.analysis.comparisons import headline
from mmt_tune.analysis.importance.types import ImportanceOptions
from mmt_tune.analysis.metrics import aggregate, main
from mmt_tune.analysis.report import write_report
from mmt_tune.analysis.results import Study, load_study
from mmt_tune.metrics import METRICS

FOLD_AUC = {
    # (model, present, trial): fold AUCs; other metrics are derived below
    ("mmt2m", "T1WI+FLAIR", "a1"): [0.90, 0.80, 0.85, 0.95, 0.88],
    ("mmt2m", "T1WI+FLAIR", "a2"): [0.70, 0.75, 0.72, 0.71, 0.69],
    ("mfnvae", "T1WI+FLAIR", "b1"): [0.80, 0.78, 0.83, 0.90, 0.80],
    ("mfnvae", "T1WI+FLAIR+DWI", "c1"): [0.85, 0.82, 0.80, 0.86, 0.84],
    ("mfnvae", "T1WI+FLAIR+DWI", "c2"): [0.60, 0.99, 0.99, 0.99, np.nan],  # undefined on a fold: excluded
    ("mmt1m", "DWI", "d1"): [0.60, 0.62, 0.64, 0.66, 0.68],
}


def hand_built_trials(shuffle: bool = True) -> pd.DataFrame:
    rows = []
    for (model, present, trial), aucs in FOLD_AUC.items():
        for fold, auc in enumerate(aucs):
            row = {"study": "s", "model": model, "present": present, "trial_id": trial, "fold": fold}
            row.update({"config/lr": 1e-5, "config/seed": 0, "config/folds": 5, "auc": auc, "status": "ok"})
            # accuracy ranks a2 above a1, to test a selectable objective
            row["accuracy"] = auc if trial != "a2" else 0.99
            row.update({"precision": auc - 0.01, "sensitivity": auc - 0.02, "specificity": auc - 0.03})
            rows.append(row)
    rows.append(
        {"study": "s", "model": "mmt1m", "present": "DWI", "trial_id": "d2", "fold": None, "status": "error"}
    )
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True) if shuffle else frame


def test_table2_picks_the_best_trial_and_reports_fold_mean_and_std():
    result = aggregate(Study("t", hand_built_trials()), "auc")
    best = result.best.set_index(["model", "present"])
    assert best.loc[("mmt2m", "T1WI+FLAIR"), "trial_id"] == "a1"
    assert best.loc[("mfnvae", "T1WI+FLAIR+DWI"), "trial_id"] == "c1"  # c2's higher mean has a NaN fold
    assert best.loc[("mmt1m", "DWI"), "n_trials"] == 1  # the failed trial d2 is not a candidate
    a1 = np.array(FOLD_AUC[("mmt2m", "T1WI+FLAIR", "a1")])
    assert best.loc[("mmt2m", "T1WI+FLAIR"), "auc_mean"] == pytest.approx(a1.mean())
    assert best.loc[("mmt2m", "T1WI+FLAIR"), "auc_std"] == pytest.approx(a1.std(ddof=0))
    assert best.loc[("mmt2m", "T1WI+FLAIR"), "specificity_mean"] == pytest.approx(a1.mean() - 0.03)

    table = result.table2()
    assert list(table.columns) == [
        "Model",
        "T1WI",
        "FLAIR",
        "DWI",
        "Accuracy",
        "AUC",
        "Precision",
        "Sensitivity",
        "Specificity",
        "AUC 95% CI",
        "Brier [95% CI]",
        "Cal. slope [95% CI]",
        "Cal. intercept [95% CI]",
        "Trials",
        "Best trial",
    ]
    assert set(table["Brier [95% CI]"]) == {"—"}  # no out-of-fold predictions in this study
    # corrected resampled t over the 5 folds: n_test / n_train = 1 / 4 (hand_built_trials records no folds)
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 1 / 4) * a1.var(ddof=1))
    assert table.loc[0, "AUC 95% CI"] == f"[{a1.mean() - half:.3f}, {min(1.0, a1.mean() + half):.3f}]"
    assert list(zip(table["Model"], table["DWI"], strict=True)) == [
        ("MMT-2M", ""),
        ("MMT-1M", "✓"),
        ("MFN-VAE", ""),
        ("MFN-VAE", "✓"),
    ]
    assert table.loc[0, "AUC"] == f"{a1.mean():.3f} ± {a1.std():.3f}"


def test_the_objective_is_selectable():
    result = aggregate(Study("t", hand_built_trials()), "accuracy")
    assert (
        result.best.set_index("present").loc["T1WI+FLAIR"].query("model == 'mmt2m'")["trial_id"].item()
        == "a2"
    )
    with pytest.raises(Exception, match="--objective must be one of"):
        aggregate(Study("t", hand_built_trials()), "f1")


def test_paired_comparisons_match_scipy_on_the_shared_folds():
    result = aggregate(Study("t", hand_built_trials()), "auc")
    rows = result.comparisons.set_index(["comparison", "metric"])
    same = rows.loc[("MMT-2M T1WI+FLAIR − MFN-VAE T1WI+FLAIR", "auc")]
    mmt = np.array(FOLD_AUC[("mmt2m", "T1WI+FLAIR", "a1")])
    vae = np.array(FOLD_AUC[("mfnvae", "T1WI+FLAIR", "b1")])
    assert same["difference"] == pytest.approx(mmt.mean() - vae.mean())
    assert same["p_ttest"] == pytest.approx(stats.ttest_rel(mmt, vae).pvalue)
    assert same["p_wilcoxon"] == pytest.approx(stats.wilcoxon(mmt, vae).pvalue)
    assert same["n_folds"] == 5
    # every configuration against the full-modality MFN-VAE, the headline among them
    full = rows.loc[("MMT-1M DWI − MFN-VAE T1WI+FLAIR+DWI", "auc")]
    dwi = np.array(FOLD_AUC[("mmt1m", "DWI", "d1")])
    c1 = np.array(FOLD_AUC[("mfnvae", "T1WI+FLAIR+DWI", "c1")])
    assert full["p_ttest"] == pytest.approx(stats.ttest_rel(dwi, c1).pvalue)
    line = headline(result)
    assert line.startswith("best one-missing MMT (MMT-2M T1WI+FLAIR) vs full-modality MFN-VAE: accuracy")
    table = result.comparison_table()
    assert table.iloc[0]["Comparison"] == "MMT-2M T1WI+FLAIR − MFN-VAE T1WI+FLAIR"
    d = mmt - vae
    t = d.mean() / np.sqrt((1 / 5 + 1 / 4) * d.var(ddof=1))
    corrected = 2 * stats.t.sf(abs(t), 4)
    assert same["p_corrected"] == pytest.approx(corrected)
    assert corrected > same["p_ttest"]  # the correction for overlapping training sets is conservative
    holm = rows.xs("auc", level="metric")["p_holm"]
    assert (holm >= rows.xs("auc", level="metric")["p_corrected"] - 1e-12).all()
    assert table.iloc[0]["AUC"] == f"{d.mean():+.3f} (p={corrected:.3f}, Holm {same['p_holm']:.3f})"


def test_unpaired_folds_are_flagged():
    trials = hand_built_trials()
    trials.loc[trials["trial_id"] == "b1", "config/seed"] = 7
    result = aggregate(Study("t", trials), "auc")
    assert any("folds are not paired" in note and "MFN-VAE T1WI+FLAIR" in note for note in result.notes)


def losses_and_predictions(trials: pd.DataFrame, patient_ids: list[str]):
    rng = np.random.default_rng(0)
    losses, predictions = [], []
    for (model, present, trial), _ in trials.dropna(subset=["fold"]).groupby(
        ["model", "present", "trial_id"]
    ):
        base = {"study": "s", "model": model, "present": present, "trial_id": trial}
        for epoch in range(6):
            for fold in range(5):
                for split in ("train", "val"):
                    losses.append(
                        {
                            **base,
                            "epoch": epoch,
                            "fold": fold,
                            "split": split,
                            "classification": 1 / (epoch + 1),
                            "reconstruction_DWI": 0.5,
                            "total": 1.5 / (epoch + 1),
                        }
                    )
        for row, patient in enumerate(patient_ids):
            label = row % 2
            predictions.append(
                {
                    **base,
                    "patient_id": patient,
                    "row": row,
                    "fold": row % 5,
                    "label": label,
                    "probability": float(np.clip(0.5 + (label - 0.5) * 0.4 + rng.normal(0, 0.2), 0, 1)),
                }
            )
    return pd.DataFrame(losses), pd.DataFrame(predictions)


def test_metrics_cli_writes_tables_and_figures(tmp_path, capsys):
    trials = hand_built_trials()
    trials.to_parquet(tmp_path / "trials.parquet")
    losses, predictions = losses_and_predictions(trials, [f"P{i:03d}" for i in range(40)])
    losses.to_parquet(tmp_path / "losses.parquet")
    predictions.to_parquet(tmp_path / "predictions.parquet")
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for name in (
        "table2.md",
        "table2.csv",
        "table2.tex",
        "comparison.md",
        "best_trials.csv",
        "comparisons.csv",
    ):
        assert (out / name).is_file(), name
    for figure in ("roc.png", "losses.png", "configurations.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG", figure
    printed = capsys.readouterr().out
    assert "| MMT-2M | ✓ | ✓ |" in printed and "best one-missing MMT" in printed


def test_report_has_an_index_and_no_patient_identifier(tmp_path):
    from mmt_tune.analysis.synthetic import paper_space, synthetic_trials

    space = {k: v for k, v in paper_space().items() if k in ("mmt2m/T1WI+FLAIR", "mfnvae/T1WI+FLAIR+DWI")}
    trials = synthetic_trials(space, 12, seed=0)
    patients = [f"HOSP-7731-{i:04d}" for i in range(30)]
    losses, predictions = losses_and_predictions(trials, patients)
    study = Study(tmp_path, trials, losses, predictions, space)
    report = write_report(
        study, tmp_path / "report", options=ImportanceOptions(seeds=2, jobs=1), progress=False
    )
    page = report.index.read_text()
    for expected in (
        "Table 2",
        "Table 3",
        "roc.png",
        "losses.png",
        "importance.png",
        "marginals.png",
        "table3.tex",
        "robustness.png",  # the two configurations' subsets: T1WI+FLAIR and all three
        "performance.json",
        "roc.csv",
        "calibration.png",
        "decision_curve.png",
        "decision_curve.csv",
    ):
        assert expected in page or (tmp_path / "report" / expected).is_file(), expected
    assert (tmp_path / "report" / "index.md").read_text().count("![") == 8
    for path in (tmp_path / "report").iterdir():
        content = path.read_bytes()
        assert b"HOSP-7731" not in content, path  # predictions carry patient IDs; the report must not


def test_a_study_folder_round_trips_through_load_study(tmp_path):
    hand_built_trials().to_csv(tmp_path / "trials.csv", index=False)
    study = load_study(tmp_path)
    assert set(study.trials["status"]) == {"ok", "error"} and study.predictions is None
    assert set(METRICS) <= set(study.trials.columns)


def test_loss_panels_show_only_the_terms_of_the_trial():
    from mmt_tune.analysis.plots import loss_panels

    curves = pd.DataFrame(
        {
            "epoch": [0, 1],
            "classification": [1.0, 0.5],
            "reconstruction_FLAIR": [0.3, 0.2],
            "reconstruction_DWI": [np.nan, np.nan],
            "kl": [np.nan, np.nan],
            "total": [1.3, 0.7],
        }
    )
    assert loss_panels(curves) == [
        ("classification", "classification"),
        ("FLAIR reconstruction", "reconstruction_FLAIR"),
        ("total", "total"),
    ]


BASELINE_AUC = {
    ("logreg", "T1WI+FLAIR", "l1"): [0.84, 0.80, 0.84, 0.90, 0.86],
    ("logreg", "T1WI+FLAIR", "l2"): [0.50, 0.52, 0.54, 0.50, 0.52],
    ("forest", "T1WI+FLAIR", "f1"): [0.82, 0.80, 0.83, 0.88, 0.84],
    ("logreg", "DWI", "l3"): [0.70, 0.72, 0.70, 0.71, 0.73],
}


def _with_baselines() -> pd.DataFrame:
    rows = []
    for (model, present, trial), aucs in BASELINE_AUC.items():
        for fold, auc in enumerate(aucs):
            row = {"study": "s", "model": model, "present": present, "trial_id": trial, "fold": fold}
            row.update({"config/C": 0.1, "config/seed": 0, "config/folds": 5, "status": "ok"})
            row.update({m: auc for m in METRICS})
            rows.append(row)
    return pd.concat([hand_built_trials(), pd.DataFrame(rows)], ignore_index=True)


def test_baselines_are_rows_of_table2_and_each_deep_configuration_meets_its_best_baseline():
    predictions = pd.DataFrame(
        {
            "model": "logreg",
            "present": "DWI",
            "trial_id": "l3",
            "row": range(10),
            "label": [1, 0, 0, 0, 1, 0, 0, 1, 0, 0],
        }
    )
    result = aggregate(Study("t", _with_baselines(), predictions=predictions), "auc")
    table = result.table2()
    assert list(table["Model"]) == [
        "MMT-2M",
        "MMT-1M",
        "MFN-VAE",
        "MFN-VAE",
        "Logistic regression",
        "Logistic regression",
        "Random forest",
    ]
    rows = result.comparisons.set_index(["comparison", "metric"])
    # The better baseline on T1WI+FLAIR is the logistic regression's best trial l1 (0.848 > forest 0.834).
    mmt = np.array(FOLD_AUC[("mmt2m", "T1WI+FLAIR", "a1")])
    logreg = np.array(BASELINE_AUC[("logreg", "T1WI+FLAIR", "l1")])
    paired = rows.loc[("MMT-2M T1WI+FLAIR − Logistic regression T1WI+FLAIR", "auc")]
    assert paired["difference"] == pytest.approx(mmt.mean() - logreg.mean())
    assert paired["p_ttest"] == pytest.approx(stats.ttest_rel(mmt, logreg).pvalue)
    assert ("MFN-VAE T1WI+FLAIR − Logistic regression T1WI+FLAIR", "auc") in rows.index
    assert ("MMT-1M DWI − Logistic regression DWI", "auc") in rows.index
    # Baselines are references, not compared with the full-modality MFN-VAE themselves.
    assert not any(
        name.startswith("Logistic") or name.startswith("Random") for name in rows.index.get_level_values(0)
    )
    assert result.comparison_table().iloc[0]["Comparison"].endswith("Logistic regression T1WI+FLAIR")
    # The notes say where each deep configuration stands against its best baseline, "above" or "below" only
    # with a Holm-adjusted corrected p < 0.05 (none here: 5 folds, small differences), else "level with"
    # and its p; and the majority-class accuracy from the out-of-fold labels (7 of 10 negative).
    level = next(note for note in result.notes if note.startswith("level with its best baseline"))
    assert not any(note.startswith(("above its best", "below its best")) for note in result.notes)
    holm = rows.loc[("MMT-1M DWI − Logistic regression DWI", "auc"), "p_holm"]
    assert f"MMT-1M DWI -0.072 vs Logistic regression DWI (Holm p = {holm:.3f})" in level
    assert "MFN-VAE T1WI+FLAIR -0.026 vs Logistic regression T1WI+FLAIR" in level
    assert "MMT-2M T1WI+FLAIR +0.028 vs Logistic regression T1WI+FLAIR" in level
    assert "majority-class accuracy (always predicting the larger class): 0.700" in result.notes


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.assign(auc=[1.7, *t["auc"][1:]]), "row 2: auc 1.7 is outside [0, 1]"),
        (lambda t: t.assign(specificity=[-0.2, *t["specificity"][1:]]), "row 2: specificity -0.2 is outside"),
        (
            lambda t: t.assign(status=["COMPLETE", *t["status"][1:]]),
            "row 2: status 'COMPLETE' is not one of ok",
        ),
        (
            lambda t: pd.concat([t, t.iloc[:1]]),
            "a second row for study s, mmt2m/T1WI+FLAIR, trial a1, fold 0",
        ),
        (
            lambda t: pd.concat([t, t.assign(study="other")]),
            "the table holds 2 studies (other, s); choose one",
        ),
        (lambda t: t.assign(status="error"), "no trial completed (7 error): nothing to analyse"),
    ],
)
def test_trials_tables_that_break_the_contract_are_one_line_and_no_report(tmp_path, capsys, edit, message):
    from mmt_tune.analysis import report

    path = tmp_path / "trials.csv"
    edit(hand_built_trials(shuffle=False)).to_csv(path, index=False)
    out = tmp_path / "report"
    assert report.main([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: ") and message in err[0]
    assert not out.exists() and not list(tmp_path.glob(".report*")), "nothing written"


def test_two_studies_in_one_table_can_be_told_apart(tmp_path):
    from mmt_tune.analysis.results import load_study

    path = tmp_path / "trials.csv"
    trials = hand_built_trials(shuffle=False)
    pd.concat([trials, trials.assign(study="other", auc=0.5)]).to_csv(path, index=False)
    assert set(load_study(path, study="other").trials["study"]) == {"other"}
    assert load_study(path, study="s").trials["auc"].max() > 0.5


def test_a_failed_report_leaves_the_previous_one(tmp_path, monkeypatch):
    from mmt_tune.analysis import report

    trials = tmp_path / "trials.csv"
    hand_built_trials().to_csv(trials, index=False)
    out = tmp_path / "report"
    assert report.main([str(trials), "--out", str(out), "--min-trials", "2"]) == 0
    before = sorted(p.name for p in out.iterdir())
    assert "index.html" in before

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write_importance", broken)
    with pytest.raises(RuntimeError):
        report.write_report(load_study(trials), out, options=ImportanceOptions(min_trials=2), progress=False)
    assert sorted(p.name for p in out.iterdir()) == before and not list(tmp_path.glob(".report*"))
