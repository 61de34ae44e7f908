"""The README demo, end to end on a small phantom cohort (real PyRadiomics, real local Ray)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mmt_tune import demo


@pytest.mark.slow
def test_demo_runs_and_reuses_its_outputs(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--patients", "30", "--no-progress", "--workers", "2"]
    assert demo.main([*argv, "--skip-study"]) == 0
    first = capsys.readouterr().out
    assert (tmp_path / "features.parquet").is_file() and (tmp_path / "phantom" / "manifest.csv").is_file()
    lines = [line.split() for line in first.splitlines() if line.strip().startswith(("T1WI", "FLAIR", "DWI"))]
    assert [parts[0] for parts in lines] == [
        "T1WI",
        "FLAIR",
        "DWI",
        "T1WI+FLAIR",
        "T1WI+DWI",
        "FLAIR+DWI",
        "T1WI+FLAIR+DWI",
    ]
    aucs = {parts[0]: float(parts[1]) for parts in lines}
    # The phantom's signal (seed 0, deterministic): DWI and T1WI carry it, FLAIR's is mostly outside the mask.
    with_dwi = [auc for subset, auc in aucs.items() if "DWI" in subset]
    assert min(with_dwi) > 0.6 and sum(with_dwi) / len(with_dwi) > aucs["FLAIR"] + 0.05, aucs
    assert not (tmp_path / "results").exists(), "--skip-study stops after the signal check"
    manifest_mtime = (tmp_path / "phantom" / "manifest.csv").stat().st_mtime_ns

    # The second run reuses cohort and features, then runs the study step: every configuration of the demo
    # space (13), Table 2 and Table 3 printed, the report written.
    assert demo.main([*argv, "--samples", "3"]) == 0
    second = capsys.readouterr().out
    assert "up to date" in second, "the second run reuses the cohort and the features"
    assert (tmp_path / "phantom" / "manifest.csv").stat().st_mtime_ns == manifest_mtime
    assert (
        "Table 2: best trial per configuration" in second and "Table 3: hyperparameter importance" in second
    )
    rows = ("| MMT-2M", "| MMT-1M", "| MFN-VAE", "| Logistic regression", "| Random forest")
    table2 = [line for line in second.splitlines() if line.startswith(rows)]
    assert len(table2) == 2 * 27, "each of 13 deep and 14 baseline configurations in Table 2 and Table 3"
    assert "majority-class accuracy (always predicting the larger class):" in second
    assert "MMT-2M T1WI+FLAIR − " in (tmp_path / "report" / "comparison.md").read_text()
    trials = pd.read_parquet(tmp_path / "results" / "demo" / "trials.parquet")
    assert (
        trials.groupby(["model", "present"])["trial_id"].nunique().eq(3).all() and len(trials) == 27 * 3 * 3
    )
    for name in ("index.html", "table2.tex", "table3.tex", "roc.png", "losses.png", "importance.png"):
        assert (tmp_path / "report" / name).is_file(), name
    # The demo's data is the phantom, and everything it writes says so.
    data = json.loads((tmp_path / "results" / "demo" / "data.json").read_text())
    assert data["phantom"] is True and data["modalities"] == ["T1WI", "FLAIR", "DWI"]
    assert data["positives"] + data["negatives"] == data["rows"] == 30
    assert "PHANTOM COHORT" in (tmp_path / "report" / "index.html").read_text()
    assert "PHANTOM COHORT" in (tmp_path / "report" / "index.md").read_text()
