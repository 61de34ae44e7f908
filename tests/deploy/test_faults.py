"""Faults outside the inputs: a full disk (the file-size limit, ``ulimit -f``) and folders or files the user
may not read or write (run as an unprivileged user: root ignores file modes). Each gives one ``error:`` line
naming the path, exit 2, and leaves the previous outputs as they were."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

NOBODY = 65534
# one matplotlib cache for every command here, built by the first (unlimited) one, so that a later
# command under a file-size limit does not try to write it
MPL = tempfile.mkdtemp(prefix="mmt-faults-mpl-")
os.chmod(MPL, 0o777)


def _limit_file_size(kib: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))

    return apply


def run_cli(module: str, *args, as_nobody: bool = False, file_kib: int | None = None, cwd=None):
    command = [sys.executable, "-m", module, *map(str, args)]
    if as_nobody:
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    env = {**os.environ, "MPLCONFIGDIR": MPL, "PYTHONDONTWRITEBYTECODE": "1"}
    preexec = _limit_file_size(file_kib) if file_kib else None
    return subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=preexec, cwd=cwd)


def one_error_line(result, *names):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert str(name) in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture()
def shared(bundle_parts):
    """A world-readable copy of the bundle and a labelled table to score (pytest's own temporary folders
    are private to root)."""
    top = Path(tempfile.mkdtemp(prefix="mmt-faults-"))
    os.chmod(top, 0o755)
    shutil.copytree(bundle_parts[2], top / "bundle")
    bundle_parts[3].to_csv(top / "new.csv", index=False)
    for path in [top, *top.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def test_a_full_disk_during_predict_leaves_the_previous_outputs_as_they_were(shared):
    out = shared / "out"
    out.mkdir()
    args = ("--bundle", shared / "bundle", "--features", shared / "new.csv", "--out", out / "p.csv")
    assert run_cli("mmt_tune.predict", *args).returncode == 0
    before = snapshot(out)
    assert set(before) == {"p.csv", "p.metrics.json", "p.calibration.png"}
    # another seed changes the metrics file; 16 KiB lets the table through and stops the figure
    result = run_cli("mmt_tune.predict", *args, "--seed", "7", file_kib=16)
    line = one_error_line(result, "cannot write", "previous outputs left as they were")
    assert "File too large" in line and str(out) in line
    assert snapshot(out) == before  # all three as they were, no temporary file left beside them
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


def test_a_full_disk_during_convert_leaves_the_previous_table(shared, tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    wide = pd.DataFrame(
        rng.normal(size=(300, 40)), columns=[f"{m}_f{i}" for m in ("T1", "T2") for i in range(20)]
    )
    wide.insert(0, "ID", [f"p{i}" for i in range(300)])
    wide.insert(1, "label", rng.integers(0, 2, 300))
    source = shared / "wide.csv"
    wide.to_csv(source, index=False)
    out = shared / "table.parquet"
    assert run_cli("mmt_tune.data.convert", source, "--out", out, "--label", "label").returncode == 0
    before = out.read_bytes()
    wide.assign(T1_f0=0.0).to_csv(source, index=False)
    result = run_cli("mmt_tune.data.convert", source, "--out", out, "--label", "label", file_kib=8)
    one_error_line(result, out, "File too large")
    assert out.read_bytes() == before
    assert [p.name for p in shared.glob(".table.parquet*")] == []


def _unprivileged_can_run() -> str | None:
    """Why the unprivileged checks cannot run here, or None: they need root (to drop privileges), setpriv,
    and a checkout and environment the unprivileged user may read (a clone in a private temporary folder
    is not)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return "needs root and setpriv to drop to an unprivileged user (root ignores file modes)"
    probe = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            sys.executable,
            "-c",
            "import mmt_tune",
        ],
        capture_output=True,
        cwd="/",
    )
    if probe.returncode != 0:
        return "the unprivileged user cannot read this checkout or its environment (e.g. a clone in a private folder)"
    return None


# Root ignores file modes, so permission faults are only real for another user; where no such user can run
# the project (not root, no setpriv, or a checkout private to root, as a clone in a 0700 temporary folder),
# these tests cannot run, and the skip says which.
UNPRIVILEGED_SKIP = _unprivileged_can_run()
needs_unprivileged = pytest.mark.skipif(UNPRIVILEGED_SKIP is not None, reason=UNPRIVILEGED_SKIP or "")


@needs_unprivileged
def test_an_output_folder_the_user_cannot_write_is_refused_before_any_work(shared):
    locked = shared / "locked"
    locked.mkdir(mode=0o755)  # root's: nobody may read, not write
    result = run_cli(
        "mmt_tune.predict",
        *("--bundle", shared / "bundle", "--features", shared / "new.csv", "--out", locked / "p.csv"),
        as_nobody=True,
    )
    one_error_line(result, locked, "Permission denied")
    assert list(locked.iterdir()) == []
    result = run_cli(
        "mmt_tune.data.convert",
        shared / "new.csv",
        "--out",
        locked / "t.parquet",
        "--id",
        "patient_id",
        "--label",
        "label",
        as_nobody=True,
    )
    one_error_line(result, locked, "Permission denied")
    assert list(locked.iterdir()) == []


@needs_unprivileged
@pytest.mark.parametrize("which", ["features", "bundle", "bundle file"])
def test_an_input_the_user_cannot_read_is_one_line_naming_it(shared, which):
    target = {
        "features": shared / "new.csv",
        "bundle": shared / "bundle",
        "bundle file": shared / "bundle" / "mmt1m_T1WI" / "weights.pt",
    }[which]
    os.chmod(target, 0o700 if target.is_dir() else 0o600)
    writable = shared / "mine"
    writable.mkdir()
    os.chown(writable, NOBODY, NOBODY)
    result = run_cli(
        "mmt_tune.predict",
        *("--bundle", shared / "bundle", "--features", shared / "new.csv", "--out", writable / "p.csv"),
        as_nobody=True,
    )
    one_error_line(result, target, "ermission denied")
    assert list(writable.iterdir()) == []


@needs_unprivileged
def test_a_study_whose_storage_the_user_cannot_write_is_refused_before_ray_starts(shared):
    from helpers import make_table

    from mmt_tune.data.table import write_feature_table

    features = shared / "t.parquet"
    write_feature_table(make_table(60), features, {})
    os.chmod(features, 0o644)
    locked = shared / "locked"
    locked.mkdir(mode=0o755)
    result = run_cli(
        "mmt_tune.run",
        *("--space", "mmt1m", "--features", features, "--storage", locked / "results", "--wandb", "off"),
        as_nobody=True,
        cwd=shared,
    )
    one_error_line(result, locked)
    assert "Permission denied" in result.stderr and list(locked.iterdir()) == []
    assert "ray" not in result.stdout.lower()
