"""The README demo, end to end on a small phantom cohort (real PyRadiomics, real local Ray)."""

from __future__ import annotations

import pytest

from mmt_tune import demo


@pytest.mark.slow
def test_demo_runs_and_reuses_its_outputs(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--patients", "30", "--no-progress", "--workers", "2"]
    assert demo.main(argv) == 0
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
    assert all(0.0 <= auc <= 1.0 for auc in aucs.values())
    manifest_mtime = (tmp_path / "phantom" / "manifest.csv").stat().st_mtime_ns
    assert demo.main(argv) == 0
    second = capsys.readouterr().out
    assert "up to date" in second, "the second run reuses the cohort and the features"
    assert (tmp_path / "phantom" / "manifest.csv").stat().st_mtime_ns == manifest_mtime
