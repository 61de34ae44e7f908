"""Calibration in Table 2 and performance.json, honest notes, unfinished and nested studies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmt_tune.analysis.calibration import fold_scores
from mmt_tune.analysis.metrics import aggregate, write_metrics
from mmt_tune.analysis.results import Study
from mmt_tune.metrics import METRICS, all_metrics
from mmt_tune.stats import corrected_t_interval

CONFIGURATIONS = {
    # (model, present, trial): how its probabilities relate to the truth
    ("mmt2m", "T1WI+FLAIR", "a1"): "overconfident",
    ("logreg", "T1WI+FLAIR", "l1"): "calibrated",
    ("mfnvae", "T1WI+FLAIR", "m1"): "flat",
}


def _probabilities(kind: str, truth: np.ndarray, prevalence: float, rng) -> np.ndarray:
    if kind == "overconfident":  # right 80% of the time, always 0.01 or 0.99
        right = rng.random(truth.size) < 0.8
        return np.where(right == (truth > 0.5), 0.99, 0.01)
    if kind == "flat":  # within 0.02 of the prevalence whatever the patient
        return prevalence + rng.uniform(-0.02, 0.02, truth.size)
    return truth


def study(planned: int | None = None, shuffle_rows: bool = False, trials_per: int = 1) -> Study:
    rng = np.random.default_rng(0)
    n, k = 100, 5
    truth = rng.uniform(0.02, 0.98, n)
    labels = (rng.random(n) < truth).astype(int)
    fold_of = np.arange(n) % k
    trials, predictions = [], []
    for (model, present, trial), kind in CONFIGURATIONS.items():
        p = _probabilities(kind, truth, labels.mean(), rng)
        for fold in range(k):
            rows = fold_of == fold
            metrics = all_metrics(labels[rows], p[rows])
            trials.append(
                {
                    "study": "s",
                    "model": model,
                    "present": present,
                    "trial_id": trial,
                    "fold": fold,
                    "status": "ok",
                    "config/folds": k,
                    "config/seed": 0,
                    **metrics,
                }
            )
            predictions.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "present": present,
                        "trial_id": trial,
                        "fold": fold,
                        "repeat": 0,
                        "row": np.flatnonzero(rows),
                        "label": labels[rows],
                        "probability": p[rows],
                    }
                )
            )
    oof = pd.concat(predictions, ignore_index=True)
    if shuffle_rows:
        oof = oof.sample(frac=1.0, random_state=1).reset_index(drop=True)
    plan = (
        {"samples": planned, "configurations": [f"{m}/{p}" for m, p, _ in CONFIGURATIONS]} if planned else {}
    )
    return Study(
        "t",
        pd.DataFrame(trials),
        predictions=oof,
        plan=plan,
        data={"rows": n, "positives": int(labels.sum())},
    )


def test_table2_and_performance_json_carry_brier_and_the_calibration_line_per_fold(tmp_path):
    s = study()
    result = aggregate(s, "auc")
    oof = s.predictions
    prevalence = oof[(oof["trial_id"] == "a1")]["label"].mean()
    per_fold = [
        fold_scores(g["label"].to_numpy(), g["probability"].to_numpy(), prevalence)
        for _, g in oof[oof["trial_id"] == "a1"].groupby("fold")
    ]
    brier = np.array([f["brier"] for f in per_fold])
    low, high = corrected_t_interval(brier, 1 / 4)
    row = result.table2().set_index("Model").loc["MMT-2M"]
    assert row["Brier [95% CI]"] == f"{brier.mean():.3f} [{low:.3f}, {high:.3f}]"
    write_metrics(result, s, tmp_path, plots=True)
    performance = json.loads((tmp_path / "performance.json").read_text())
    entry = next(c for c in performance["configurations"] if c["model"] == "mmt2m")
    assert entry["metrics"]["brier"]["mean"] == pytest.approx(brier.mean(), abs=1e-15)
    assert entry["metrics"]["brier"]["ci95"] == pytest.approx([low, high], abs=1e-15)
    assert entry["metrics"]["log_loss"]["prevalence"] == pytest.approx(
        np.mean([f["log_loss_prevalence"] for f in per_fold])
    )
    slopes = [f["cal_slope"] for f in per_fold]
    assert entry["metrics"]["cal_slope"]["mean"] == pytest.approx(np.mean(slopes), abs=1e-12)
    assert set(entry["metrics"]) == {*METRICS, "brier", "log_loss", "cal_slope", "cal_intercept"}
    # the decision curve and reliability curves of each family's best, without row-level data
    decision = pd.read_csv(tmp_path / "decision_curve.csv")
    assert set(decision["model"]) == {"mmt2m", "logreg", "mfnvae"}
    assert {"threshold", "net_benefit", "treat_all", "treat_none"} <= set(decision.columns)
    assert (
        "row" not in decision.columns and "row" not in pd.read_csv(tmp_path / "calibration_curve.csv").columns
    )
    assert (tmp_path / "calibration.png").is_file() and (tmp_path / "decision_curve.png").is_file()


def test_the_notes_name_overconfident_and_near_constant_configurations():
    notes = aggregate(study(), "auc").notes
    worse = next(n for n in notes if n.startswith("log loss worse than always predicting the prevalence"))
    assert "MMT-2M T1WI+FLAIR" in worse and "Logistic regression" not in worse
    flat = next(n for n in notes if n.startswith("near-constant predictions"))
    assert "MFN-VAE T1WI+FLAIR (100% within 0.05)" in flat and "MMT-2M" not in flat
    assert any(n.startswith("majority-class accuracy") for n in notes)


def test_calibration_scores_do_not_depend_on_the_order_of_the_prediction_rows():
    a = aggregate(study(), "auc")
    b = aggregate(study(shuffle_rows=True), "auc")
    columns = [c for c in a.best.columns if c.startswith(("brier", "log_loss", "cal_"))]
    pd.testing.assert_frame_equal(a.best[columns], b.best[columns], check_exact=True)
    assert a.notes == b.notes


def test_an_unfinished_study_says_so_and_a_finished_one_does_not():
    finished = aggregate(study(planned=1), "auc").notes
    assert not any("UNFINISHED" in n for n in finished)
    unfinished = aggregate(study(planned=6), "auc").notes
    banner = unfinished[0]
    assert banner.startswith("UNFINISHED STUDY: 3 of 18 planned trials completed")
    assert "mmt2m/T1WI+FLAIR 1/6" in banner and "--resume" in banner
    assert set(aggregate(study(planned=6), "auc").table2()["Trials"]) == {"1/6"}  # completed of planned
    one_short = aggregate(study(planned=2), "auc").notes[0]  # a single trial missing is enough
    assert one_short.startswith("UNFINISHED STUDY: 3 of 6 planned trials completed")


def test_a_deep_configuration_without_a_baseline_is_listed_as_not_compared():
    s = study()
    s.trials = s.trials[s.trials["model"] != "logreg"]
    notes = aggregate(s, "auc").notes
    alone = next(n for n in notes if n.startswith("no baseline on the same sequences"))
    assert "MMT-2M T1WI+FLAIR" in alone and "MFN-VAE T1WI+FLAIR" in alone
    assert not any("beat" in n or n.startswith(("above its best", "level with")) for n in notes)


def test_delongs_p_sits_beside_the_pooled_aucs_it_compares():
    from mmt_tune.metrics import auc
    from mmt_tune.stats import delong_test

    s = study()
    row = aggregate(s, "auc").comparisons.set_index(["comparison", "metric"])
    row = row.loc[("MMT-2M T1WI+FLAIR − Logistic regression T1WI+FLAIR", "auc")]
    oof = s.predictions.set_index("row").sort_index()
    a, b = oof[oof["trial_id"] == "a1"], oof[oof["trial_id"] == "l1"]
    assert row["left_pooled_auc"] == auc(a["label"], a["probability"])
    assert row["right_pooled_auc"] == auc(b["label"], b["probability"])
    assert row["p_delong"] == pytest.approx(
        delong_test(a["label"].to_numpy(), a["probability"], b["probability"])
    )


def _report(tmp_path, data=None):
    from mmt_tune.analysis.importance.types import ImportanceOptions
    from mmt_tune.analysis.report import write_report

    s = study()
    s.data = data or s.data
    return write_report(s, tmp_path / "report", options=ImportanceOptions(seeds=1, jobs=1), progress=False)


def test_the_html_index_names_its_language_and_study_and_captions_every_table(tmp_path):
    page = _report(tmp_path).index.read_text()
    assert "<html lang='en'>" in page and "<title>Study report: s</title>" in page
    assert page.count("<table") == page.count("<caption>") >= 2
    assert "<th>" not in page and '<th scope="col">' in page
    assert "Comparisons: each deep configuration vs its best baseline" in page


def test_an_imported_table_is_named_as_such_not_as_an_unknown_extraction(tmp_path):
    page = _report(
        tmp_path, {"rows": 100, "positives": 40, "source": "imported", "features_sha256": "ab" * 32}
    )
    text = page.index.read_text()
    assert "imported table (features computed elsewhere" in text and "PyRadiomics unknown" not in text


# Compiling needs a TeX installation, which is not a project dependency (on Debian: texlive-latex-base and
# texlive-latex-recommended); where there is none the test cannot run, and says why.
@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None, reason="no TeX engine (pdflatex) here")
def test_table2_tex_compiles_with_the_packages_it_names(tmp_path):
    import subprocess

    report = _report(tmp_path)
    table = (report.folder / "table2.tex").read_text()
    assert table.startswith("% needs \\usepackage{booktabs} (rules) and \\usepackage{amssymb}")
    document = tmp_path / "doc.tex"
    document.write_text(
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n\\usepackage{amssymb}\n"
        "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n\\tiny\n"
        + table
        + "\\end{document}\n"
    )
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_the_index_of_an_unfinished_study_opens_with_the_banner(tmp_path):
    from mmt_tune.analysis.importance.types import ImportanceOptions
    from mmt_tune.analysis.report import write_report

    page = write_report(
        study(planned=6), tmp_path / "r", options=ImportanceOptions(seeds=1, jobs=1), progress=False
    ).index.read_text()
    assert '<p class="warning">UNFINISHED STUDY: 3 of 18 planned trials completed' in page
    finished = write_report(
        study(planned=1), tmp_path / "f", options=ImportanceOptions(seeds=1, jobs=1), progress=False
    )
    assert "UNFINISHED" not in finished.index.read_text()
