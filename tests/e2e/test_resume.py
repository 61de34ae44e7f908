"""Resume after SIGKILL of the study driver, for real: subprocess, kill, resume, inspect Tune's own records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_table


def _reports(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def _state(experiment: Path) -> dict[str, dict]:
    """Per trial folder: its reports and whether it holds a checkpoint."""
    return {
        d.name: {"reports": _reports(d), "checkpointed": any(d.glob("checkpoint_*"))}
        for d in experiment.glob("trial_*")
        if d.is_dir()
    }


def _env() -> dict:
    """The study's own W&B service, never one this test process may have started (its runs would outlive
    the kill and their IDs stay "in use" when the study resumes)."""
    return {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"} | {"RAY_USAGE_STATS_ENABLED": "0"}


def _kill_when(cmd: list[str], experiment: Path, ready, waiting_for: str) -> None:
    """Start the study ``cmd``, SIGKILL it (driver and Ray) as soon as ``ready(_state(experiment))``, after
    Tune has had time to save its experiment state (every 2 s)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=_env()
    )
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, "the study finished before it could be interrupted"
            assert time.time() < deadline, f"no {waiting_for} within 300 s"
            if ready(_state(experiment)):
                time.sleep(2.5)
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray cluster it started
        proc.wait()


@pytest.mark.slow
def test_sigkill_then_resume_completes_the_study_without_rerunning_or_losing_trials(tmp_path):
    from mmt_tune.data.table import write_feature_table

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(200, signal={"DWI": 1.0}), features, {})
    storage, name = tmp_path / "results", "resume"
    experiment = storage / name
    cmd = [
        sys.executable,
        "-m",
        "mmt_tune.run",
        "--space",
        "mmt1m",
        "--features",
        str(features),
        "--num-samples",
        "2",
        "--epochs",
        "200",  # a trial checkpointed at the kill's trigger still runs 2.5 s later (at 60 it could end)
        "--folds",
        "2",
        "--checkpoint-every",
        "4",
        "--storage",
        str(storage),
        "--name",
        name,
    ]

    def finished_and_checkpointed(state: dict) -> bool:
        done = {t for t, s in state.items() if s["reports"] and s["reports"][-1].get("done")}
        return bool(done) and any(s["checkpointed"] and t not in done for t, s in state.items())

    _kill_when(cmd, experiment, finished_and_checkpointed, "finished and checkpointed trials")
    before = _state(experiment)
    finished_before = {
        t: len(s["reports"]) for t, s in before.items() if s["reports"] and s["reports"][-1].get("done")
    }
    assert finished_before
    # The trials table is refreshed during the run: after the kill it lists every trial Tune recorded as
    # finished, each complete (one that finished in the instant before the kill may be listed before Tune's
    # own result file says so).
    partial = pd.read_parquet(experiment / "trials.parquet")
    assert {name.split("_")[1] for name in finished_before} <= set(partial["trial_id"])  # trial_<id>
    assert (partial["status"] == "ok").all() and partial["auc"].notna().all()

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=_env(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    after = _state(experiment)
    trials = pd.read_parquet(experiment / "trials.parquet")
    assert trials["trial_id"].nunique() == 6, "no trial lost, none added: each configuration's budget is 2"
    assert trials.groupby("present")["trial_id"].nunique().to_dict() == {"T1WI": 2, "FLAIR": 2, "DWI": 2}
    errors = [f.read_text()[-1500:] for f in experiment.glob("trial_*/error.txt")]
    assert set(trials["status"]) == {"ok"} and len(trials) == 12, errors
    assert len(after) == 6
    for trial, count in finished_before.items():
        assert len(after[trial]["reports"]) == count, f"{trial} finished before the kill but was run again"
    continued = 0
    for trial, state in after.items():
        epochs = [r["epoch"] for r in state["reports"]]
        # The first reported epoch (the first checkpoint's, 3) twice would mean training started over.
        assert epochs.count(min(epochs)) == 1, f"{trial} restarted from epoch 0 instead of its checkpoint"
        assert state["reports"][-1].get("done")
        if trial in before and trial not in finished_before and before[trial]["checkpointed"]:
            continued += 1
    assert continued >= 1, "at least one trial was interrupted after a checkpoint and continued from it"
    # W&B: one offline run per trial, the interrupted ones' earlier runs replaced; a continued trial's run
    # holds every epoch once (those before its checkpoint logged again from the checkpoint's history).
    runs = sorted((experiment / "wandb").glob("*/wandb/offline-run-*"))
    assert len(runs) == 6, [r.relative_to(experiment) for r in runs]
    assert {r.parent.parent.name for r in runs} == {t.split("_")[1] for t in after}
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    for run in runs:
        records = subprocess.run(
            [wandb_cli, "leet", "inspect", "--json", str(run)], capture_output=True, text=True, check=True
        ).stdout
        epochs = [
            json.loads(line)["history"]["item"]["epoch"]
            for line in records.splitlines()
            if '"type":"history"' in line
        ]
        assert epochs == list(range(len(epochs))) and len(epochs) >= 4, (run.name, epochs)


@pytest.mark.slow
def test_sigkill_mid_pack_then_resume_continues_the_pack_with_the_uninterrupted_numbers(tmp_path):
    """--pack-trials 2: a pack killed after a checkpoint continues from it on --resume (its first checkpoint
    epoch reported once), and every member ends with the numbers of the same pack never interrupted."""
    from mmt_tune.config import TrainConfig
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.training.refit import trial_options
    from mmt_tune.training.trial_packs import train_trials

    table = make_table(200, signal={"DWI": 1.0})
    features = tmp_path / "features.parquet"
    write_feature_table(table, features, {})
    storage, name = tmp_path / "results", "packs"
    experiment = storage / name
    cmd = [sys.executable, "-m", "mmt_tune.run", "--space", "mmt1m", "--features", str(features)]
    # 4 trials per configuration: 6 packs of 2 keep both CPUs busy, so the launcher keeps packs of 2 (with 2
    # trials each, 3 packs would leave a CPU idle and it would train the trials singly)
    # and enough epochs that a pack still runs 2.5 s after its first checkpoint, when the study is killed
    cmd += ["--num-samples", "4", "--pack-trials", "2", "--epochs", "100", "--folds", "2"]
    cmd += ["--checkpoint-every", "4", "--storage", str(storage), "--name", name, "--wandb", "off"]
    # A pack reports at its checkpoints only: one report not marked done means one to continue from.
    _kill_when(
        cmd,
        experiment,
        lambda state: any(s["reports"] and not s["reports"][-1].get("done") for s in state.values()),
        "checkpointed pack",
    )
    interrupted = {
        t for t, s in _state(experiment).items() if s["reports"] and not s["reports"][-1].get("done")
    }
    assert interrupted
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=_env(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _state(experiment)
    for trial in interrupted:
        epochs = [r["epoch"] for r in after[trial]["reports"]]
        assert epochs.count(min(epochs)) == 1, f"{trial} trained its pack again from epoch 0"
        assert after[trial]["reports"][-1].get("done")
    trials = pd.read_parquet(experiment / "trials.parquet")
    assert trials["trial_id"].nunique() == 12 and set(trials["status"]) == {"ok"}
    packs = trials.groupby(trials["trial_id"].str.rsplit("-", n=1).str[0])
    for _, rows in packs:
        members = rows.groupby("trial_id", sort=True)
        configs = [
            TrainConfig.from_options(
                "mmt1m", group.iloc[0]["present"].split("+"), trial_options(group.iloc[0])
            )
            for _, group in members
        ]
        fresh = train_trials(table, configs)
        for (_, group), result in zip(members, fresh, strict=True):
            np.testing.assert_array_equal(
                group.sort_values("fold")["auc"].to_numpy(), result.folds["auc"].to_numpy()
            )


def _trial_workers() -> list[int]:
    """The Ray worker processes running a trial (Tune's function trainable, one per busy slot; Ray sets
    their process title)."""
    workers = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:  # gone, or not a process
            continue
        if proc.name.isdigit() and title.startswith(b"ray::ImplicitFunc"):
            workers.append(int(proc.name))
    return workers


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_one_error_with_its_cause_and_resume_completes_it(tmp_path):
    """SIGKILL of one trial's Ray worker while the study goes on: the study finishes its other trials, the
    killed trial is recorded as an error saying its worker died, and --resume continues it from its
    checkpoint, losing no trial."""
    from mmt_tune.data.table import write_feature_table

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(200, signal={"DWI": 1.0}), features, {})
    storage, name = tmp_path / "results", "worker"
    experiment = storage / name
    cmd = [sys.executable, "-m", "mmt_tune.run", "--space", "mmt1m", "--features", str(features)]
    cmd += ["--num-samples", "2", "--epochs", "60", "--folds", "2", "--checkpoint-every", "4"]
    cmd += ["--storage", str(storage), "--name", name, "--wandb", "off"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    killed = None
    try:
        deadline = time.time() + 300
        while killed is None:
            assert proc.poll() is None, "the study finished before a worker could be killed"
            assert time.time() < deadline, "no checkpointed trial within 300 s"
            state = _state(experiment)
            if any(
                s["checkpointed"] and not s["reports"][-1].get("done") for s in state.values() if s["reports"]
            ):
                workers = _trial_workers()
                if workers:
                    killed = workers[0]
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.2)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]  # every configuration still has a completed trial
    assert "Token authentication" not in err  # Ray's start-up notice is not the user's business
    trials = pd.read_parquet(experiment / "trials.parquet")
    failed = trials[trials["status"] == "error"]["trial_id"].unique()
    assert len(failed) == 1, trials[["trial_id", "status"]].drop_duplicates()
    assert trials["trial_id"].nunique() == 6
    lines = [line for line in err.splitlines() if line.startswith("error: trial")]
    assert len(lines) == 1 and failed[0] in lines[0], err[-3000:]
    assert "died" in lines[0].lower() or "worker" in lines[0].lower(), lines[0]
    before = _state(experiment)
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=_env(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = pd.read_parquet(experiment / "trials.parquet")
    assert trials["trial_id"].nunique() == 6 and set(trials["status"]) == {"ok"}
    after = _state(experiment)
    for trial, state in after.items():
        assert state["reports"][-1].get("done")
        if trial in before and before[trial]["reports"] and before[trial]["reports"][-1].get("done"):
            assert len(state["reports"]) == len(before[trial]["reports"]), f"{trial} ran again"
    epochs = [r["epoch"] for r in after[f"trial_{failed[0]}"]["reports"]]
    assert epochs.count(min(epochs)) == 1, "the killed trial continued from its checkpoint, not from epoch 0"
