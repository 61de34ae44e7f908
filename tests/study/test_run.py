"""The study launcher with real Ray Tune and Optuna: per-configuration studies, budgets, trials table."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import REPO, make_table

from mmt_tune._internals import optuna_study
from mmt_tune.metrics import METRICS
from mmt_tune.spaces import load_space
from mmt_tune.study.search import PerConfigurationSearch


def _complete(searcher, trial_id, value):
    searcher.on_trial_complete(trial_id, {"auc": value})


def _assert_best_is_the_highest_mean(result) -> None:
    """best() holds, per configuration, the trial with the highest mean AUC over folds among finished ones."""
    ok = result.trials[result.trials["status"] == "ok"]
    means = ok.groupby(["model", "present", "trial_id"])["auc"].mean()
    best = result.best()
    assert len(best) == means.groupby(level=["model", "present"]).ngroups
    for _, row in best.iterrows():
        model, present, trial_id = row["model"], row["present"], row["trial_id"]
        assert row["auc_mean"] == pytest.approx(means.loc[(model, present)].max())
        assert means.loc[(model, present, trial_id)] == means.loc[(model, present)].max()


def test_round_robin_gives_equal_budgets_then_finishes():
    searcher = PerConfigurationSearch(load_space("mmt2m"), samples_per_configuration=3, seed=1)
    configs = [searcher.suggest(f"t{i}") for i in range(9)]
    keys = [c["configuration"] for c in configs]
    assert pd.Series(keys).value_counts().to_dict() == {
        "mmt2m/T1WI+FLAIR": 3,
        "mmt2m/T1WI+DWI": 3,
        "mmt2m/FLAIR+DWI": 3,
    }
    assert searcher.suggest("t9") == PerConfigurationSearch.FINISHED
    first = configs[0]
    assert first["model"] == "mmt2m" and first["present"] == ["T1WI", "FLAIR"]
    assert set(first) >= {"lr", "alpha_DWI", "beta", "epochs"} and 1e-6 <= first["lr"] <= 1e-5


def test_a_configuration_with_nothing_searched_gets_one_trial_and_no_optuna_study(tmp_path):
    """Every option fixed (Ray's OptunaSearch would refuse the empty space): one trial, not N copies."""
    from mmt_tune.spaces import load_space

    space = tmp_path / "space.yaml"
    space.write_text(
        "name: fixed\nconfigurations:\n  - {model: logreg, present: [DWI]}\n  - {model: forest, present: [DWI]}\n"
        "parameters:\n  C: {distribution: loguniform, low: 1.0e-2, high: 1.0}\nfixed: {n_estimators: 20}\n"
    )
    searcher = PerConfigurationSearch(load_space(space), samples_per_configuration=3, seed=0)
    assert searcher.total_trials == 4
    configs = [searcher.suggest(f"t{i}") for i in range(4)]
    assert [c["configuration"] for c in configs].count("forest/DWI") == 1
    assert searcher.suggest("t4") == PerConfigurationSearch.FINISHED
    forest = next(c for c in configs if c["model"] == "forest")
    searcher.on_trial_complete(f"t{configs.index(forest)}", result={"auc": 0.7})  # nothing to tell, no error


def test_completions_go_to_the_configuration_that_proposed_them():
    searcher = PerConfigurationSearch(load_space("mmt1m"), samples_per_configuration=2, seed=0)
    for i in range(6):
        config = searcher.suggest(f"t{i}")
        _complete(searcher, f"t{i}", 0.5 + 0.01 * i)
        assert searcher.trial_configuration[f"t{i}"] == config["configuration"]
    for key, search in searcher.studies.items():
        study = optuna_study(search)
        assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials), key


def test_save_and_restore_continue_every_sampler_exactly(tmp_path):
    """Resuming from a saved searcher proposes the same next trials as never stopping."""
    space = load_space("mmt1m")
    straight = PerConfigurationSearch(space, samples_per_configuration=4, seed=7)
    interrupted = PerConfigurationSearch(space, samples_per_configuration=4, seed=7)
    for searcher in (straight, interrupted):
        for i in range(6):
            searcher.suggest(f"t{i}")
            _complete(searcher, f"t{i}", 0.6 + 0.01 * i)
    interrupted.save(str(tmp_path / "searcher.pkl"))
    resumed = PerConfigurationSearch(space, samples_per_configuration=4, seed=99)  # state comes from the file
    resumed.restore(str(tmp_path / "searcher.pkl"))
    for i in range(6, 12):
        assert resumed.suggest(f"t{i}") == straight.suggest(f"t{i}")


def test_a_stored_study_resumes_exactly_and_fails_trials_asked_after_the_last_save(tmp_path):
    """With Optuna storage, resuming proposes what never stopping proposes, and a trial the interrupted run
    asked after Tune's last save (never told) is marked failed instead of staying 'running' forever."""
    space = load_space("mmt1m")
    straight = PerConfigurationSearch(space, 4, seed=7, storage=tmp_path / "straight.journal")
    interrupted = PerConfigurationSearch(space, 4, seed=7, storage=tmp_path / "resumed.journal")
    for searcher in (straight, interrupted):
        for i in range(6):
            searcher.suggest(f"t{i}")
            _complete(searcher, f"t{i}", 0.6 + 0.01 * i)
    interrupted.save(str(tmp_path / "searcher.pkl"))
    orphan = interrupted.suggest("t6")  # asked, then the run is killed before Tune saves again
    resumed = PerConfigurationSearch(space, 4, seed=99, storage=tmp_path / "unused.journal")
    resumed.restore(str(tmp_path / "searcher.pkl"))
    study = optuna_study(resumed.studies[orphan["configuration"]])
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    for i in range(6, 12):
        assert resumed.suggest(f"t{i}") == straight.suggest(f"t{i}")


@pytest.mark.slow
def test_smoke_study_on_local_ray_writes_the_trials_table_and_phi_free_wandb_runs(
    ray_local, tmp_path, capsys
):
    import json
    import re
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.entry import run_study

    # Identifiers a real cohort would have: patient IDs, a dated cohort folder with the hospital's name.
    table = make_table(60, signal={"DWI": 1.5})
    table["patient_id"] = [f"HOSP-7731-{i:04d}" for i in range(len(table))]
    data_dir = tmp_path / "StMary_Hospital_cohort_2019-04-01"
    data_dir.mkdir()
    features = data_dir / "features.parquet"
    write_feature_table(table, features, {})
    storage = tmp_path / "results"
    result = run_study(
        "mmt1m",
        features,
        samples=2,
        epochs=2,
        folds=2,
        storage=storage,
        name="smoke",
        configurations=["mmt1m/T1WI", "mmt1m/DWI"],
        gpus_per_trial=0.5,
        wandb="offline",
    )
    err = capsys.readouterr().err
    assert "this machine has no GPU; running trials on CPU" in err
    # after the first two trials (two run at once): an estimate for the other two
    assert "estimate: about 1 min more for the other 2 trials (the first 2 took 1 min;" in err

    trials = pd.read_parquet(result.experiment / "trials.parquet")
    assert (result.experiment / "trials.csv").is_file()
    assert len(trials) == 4 * 2 and set(trials["status"]) == {"ok"}
    assert trials.groupby("present")["trial_id"].nunique().to_dict() == {"T1WI": 2, "DWI": 2}
    for column in [
        "study",
        "model",
        "present",
        "trial_id",
        "fold",
        "config/lr",
        "config/alpha_FLAIR",
        "config/gamma",
        *METRICS,
    ]:
        assert column in trials.columns, column
    assert trials["config/epochs"].eq(2).all()
    # run settings reach trials through tune.with_parameters: they are not hyperparameters
    assert not {"config/seed", "config/device", "config/checkpoint_every"} & set(trials.columns)
    _assert_best_is_the_highest_mean(result)
    assert len(result.best()) == 2
    for trial_dir in result.experiment.glob("trial_*"):  # the final checkpoint holds the trial's tables
        assert len(list(trial_dir.glob("checkpoint_*/predictions.csv"))) == 1, trial_dir
    losses = pd.read_parquet(result.experiment / "losses.parquet")
    predictions = pd.read_parquet(result.experiment / "predictions.parquet")
    assert set(losses["trial_id"]) == set(trials["trial_id"]) == set(predictions["trial_id"])
    assert {"epoch", "fold", "split", "classification", "total"} <= set(losses.columns)
    assert (predictions.groupby("trial_id").size() == len(table)).all(), "every row predicted once per trial"

    # W&B: one complete offline run per trial, readable with wandb's own tool, grouped per configuration.
    runs = sorted((result.experiment / "wandb").glob("*/wandb/offline-run-*"))
    assert len(runs) == 4
    allowed = {
        "lr",
        "alpha_FLAIR",
        "alpha_DWI",
        "alpha_T1WI",
        "beta",
        "gamma",
        "epochs",
        "batch_size",
        "folds",
        "seed",
        "device",
        "configuration",
        "model",
        "present",
    }
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    for run in runs:
        inspected = subprocess.run(
            [wandb_cli, "leet", "inspect", "--summary", "--json", str(run)],
            capture_output=True,
            text=True,
            check=True,
        )
        summary = json.loads(inspected.stdout)
        assert summary["state"] == "finished" and "cv/auc" in summary["summary"]
        assert set(summary["config"]) <= allowed, set(summary["config"]) - allowed
        records = subprocess.run(
            [wandb_cli, "leet", "inspect", "--json", str(run)], capture_output=True, text=True, check=True
        ).stdout
        assert re.search(r'"run_group":"smoke/mmt1m/(T1WI|DWI)"', records) and '"job_type":"mmt1m"' in records
        # The run record names no machine: the host field is masked (it held the host name).
        assert '"host":"masked"' in records and f'"host":"{socket.gethostname()}"' not in records
        assert set(summary["summary"]) >= {"fold0/auc", "fold1/specificity"}

    # Privacy: no patient ID, data path, cohort folder or cohort date in any file W&B wrote, and no local
    # path at all in what `wandb sync` would upload (the .wandb log and files/).
    forbidden = [*table["patient_id"], str(features), data_dir.name, "StMary", "2019-04-01"]
    scanned = 0
    for path in (result.experiment / "wandb").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            scanned += 1
            for needle in forbidden:
                assert needle.encode() not in content, f"{needle!r} found in {path}"
            uploaded = path.suffix == ".wandb" or "files" in path.relative_to(result.experiment).parts
            if uploaded:
                assert str(tmp_path).encode() not in content, f"a local path in {path}"
                # ...nor the home folder (a logged W&B Table once recorded its staging path there)
                assert str(Path.home()).encode() not in content, f"the home path in {path}"
    assert scanned >= 4 * 3

    # The analysis reads the results folder as the launcher wrote it (bounds from space.json), and the report
    # it writes (meant to be shared) holds no patient identifier or path either.
    from mmt_tune.analysis.report import write_report
    from mmt_tune.analysis.results import load_study

    study = load_study(result.experiment)
    assert set(study.space) == {"mmt1m/T1WI", "mmt1m/DWI"} and study.space["mmt1m/T1WI"]["lr"].log
    assert study.predictions is not None and study.losses is not None
    report = write_report(study, tmp_path / "report", progress=False)
    assert len(report.metrics.best) == 2
    for name in ("index.html", "table2.md", "table3.md", "roc.png", "losses.png"):
        assert (tmp_path / "report" / name).is_file(), name
    for path in (tmp_path / "report").iterdir():
        for needle in [*forbidden, str(tmp_path)]:
            assert needle.encode() not in path.read_bytes(), f"{needle!r} found in {path}"


def test_bad_space_fails_before_any_work(capsys):
    from mmt_tune import run

    assert run.main(["--space", "nope", "--features", "missing.parquet"]) == 2
    assert "unknown search space 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_asha_stops_trials_early_within_each_configuration(ray_local, tmp_path):
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.entry import run_study

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(120, signal={"DWI": 1.5}), features, {})
    result = run_study(
        "paper-wide",
        features,
        samples=6,
        epochs=12,
        folds=2,
        storage=tmp_path / "results",
        name="asha",
        wandb="off",
        configurations=["mmt1m/T1WI", "mmt1m/DWI"],
        asha=True,
    )
    per_trial = result.trials.drop_duplicates("trial_id")
    assert per_trial.groupby("present").size().to_dict() == {"T1WI": 6, "DWI": 6}, "budgets stay equal"
    assert set(per_trial["status"]) <= {"ok", "stopped"}
    assert (per_trial["status"] == "stopped").sum() >= 1, "ASHA stopped no trial"
    assert (per_trial["status"] == "ok").groupby(per_trial["present"]).sum().min() >= 1, (
        "each keeps a finisher"
    )
    _assert_best_is_the_highest_mean(result)
    assert len(result.best()) == 2


def test_trial_progress_bar_counts_ended_trials_and_pickles():
    from types import SimpleNamespace

    from ray import cloudpickle

    from mmt_tune.study.callbacks import TrialProgress

    callback = TrialProgress(5)
    callback.setup()
    trials = [SimpleNamespace(status=s) for s in ("TERMINATED", "RUNNING", "ERROR", "PENDING")]
    callback.on_trial_complete(0, trials, trials[1])  # Tune calls this before marking the trial ended
    assert callback.bar.n == 3 and callback.bar.total == 5
    restored = cloudpickle.loads(cloudpickle.dumps(callback))  # Tune saves its callbacks with the experiment
    assert restored.bar is None
    callback.on_experiment_end(trials)


@pytest.mark.slow
def test_a_study_with_baselines_gives_them_only_their_options_and_compares_against_them(ray_local, tmp_path):
    """--epochs goes to the deep model only; every baseline trial completes; Table 2 has the baseline rows
    and each deep configuration is compared with the better baseline on the same modalities."""
    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.results import load_study
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.errors import InputError
    from mmt_tune.study.entry import run_study

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(60, signal={"DWI": 1.5}), features, {})
    space = tmp_path / "space.yaml"
    space.write_text(
        "name: with-baselines\n"
        "configurations:\n"
        "  - {model: mmt1m, present: [DWI]}\n"
        "  - {model: logreg, present: [DWI]}\n"
        "  - {model: forest, present: [DWI]}\n"
        "parameters:\n"
        "  lr: {distribution: loguniform, low: 1.0e-4, high: 1.0e-2}\n"
        "  C: {distribution: loguniform, low: 1.0e-2, high: 1.0}\n"
        "  max_depth: {distribution: int, low: 2, high: 4}\n"
        "fixed: {batch_size: 16, n_estimators: 20}\n"
    )
    result = run_study(
        space, features, samples=2, epochs=2, folds=2, storage=tmp_path / "results", wandb="off", verbose=0
    )
    trials = pd.read_parquet(result.experiment / "trials.parquet")
    assert set(trials["status"]) == {"ok"} and trials.groupby("model")["trial_id"].nunique().to_dict() == {
        "mmt1m": 2,
        "logreg": 2,
        "forest": 2,
    }
    by_model = trials.groupby("model")
    assert by_model["config/epochs"].apply(lambda v: v.notna().all()).to_dict() == {
        "forest": False,
        "logreg": False,
        "mmt1m": True,
    }
    assert trials.loc[trials["model"] == "logreg", "config/C"].between(1e-2, 1.0).all()
    metrics = aggregate(load_study(result.experiment))
    assert list(metrics.table2()["Model"]) == ["MMT-1M", "Logistic regression", "Random forest"]
    assert metrics.comparisons["right"].str.contains("Logistic regression|Random forest").any()

    # The study recorded its identity: resuming it with another table is refused before anything changes.
    other = tmp_path / "other.parquet"
    write_feature_table(make_table(60, signal={"DWI": 1.5}, seed=3), other, {})
    before = (result.experiment / "trials.parquet").read_bytes()
    with pytest.raises(InputError, match="--resume with different --features"):
        run_study(
            space, other, samples=2, epochs=2, folds=2, storage=tmp_path / "results", wandb="off", resume=True
        )
    assert (result.experiment / "trials.parquet").read_bytes() == before


def _forbid_ray_start(monkeypatch):
    import ray

    def started(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "init", started)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)


def test_inputs_every_trial_would_fail_on_are_refused_before_ray_starts(tmp_path, capsys, monkeypatch):
    _forbid_ray_start(monkeypatch)

    from mmt_tune import run
    from mmt_tune.data.table import write_feature_table

    table = make_table(40)
    table = table[[c for c in table.columns if not c.startswith("FLAIR__")]]  # MMT reconstructs FLAIR
    features = tmp_path / "features.parquet"
    write_feature_table(table, features, {})
    argv = ["--space", "mmt1m", "--features", str(features), "--storage", str(tmp_path / "results")]
    assert run.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{features}: configuration mmt1m/T1WI: feature table has no columns for modality FLAIR" in err
    assert not (tmp_path / "results").exists()
    write_feature_table(make_table(40), features, {})
    assert run.main([*argv, "--folds", "30"]) == 2  # 40 rows cannot make 30 stratified folds
    assert "cannot make 30 stratified folds" in capsys.readouterr().err


@pytest.mark.slow
def test_a_configuration_whose_every_trial_fails_makes_the_run_fail(ray_local, tmp_path, capsys):
    """Constant T1WI features leave the logistic regression nothing to fit (its trials raise inside Ray): the
    run still finishes the other configuration, prints the first error once, and exits 1."""
    from mmt_tune import run
    from mmt_tune.data.table import write_feature_table

    table = make_table(40, signal={"DWI": 1.0})
    for column in [c for c in table.columns if c.startswith("T1WI__")]:
        table[column] = 1.0
    features = tmp_path / "features.parquet"
    write_feature_table(table, features, {})
    space = tmp_path / "space.yaml"
    space.write_text(
        "configurations:\n  - {model: logreg, present: [T1WI]}\n  - {model: logreg, present: [DWI]}\n"
        "parameters:\n  C: {distribution: loguniform, low: 0.01, high: 1}\n"
    )
    argv = ["--space", str(space), "--features", str(features), "--storage", str(tmp_path), "--wandb", "off"]
    assert run.main([*argv, "--num-samples", "2", "--folds", "2"]) == 1
    err = capsys.readouterr().err
    assert "error: no trial of 1 configuration(s) completed (logreg/T1WI); first error: ValueError" in err
    assert err.count("first error") == 1


def test_an_unwritable_storage_fails_before_any_work(tmp_path, capsys, monkeypatch):
    _forbid_ray_start(monkeypatch)

    from mmt_tune import run
    from mmt_tune.data.table import write_feature_table

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(40), features, {})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["--space", "mmt1m", "--features", str(features), "--storage", str(blocker / "results")]
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write here (--storage)" in err[0]


def test_a_second_run_on_the_same_study_fails_at_once(tmp_path, capsys):
    from mmt_tune import run
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.guards import StudyLock

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(40), features, {})
    folder = tmp_path / "results" / "mmt1m"
    folder.mkdir(parents=True)
    with StudyLock(folder):  # as a first run holds it
        argv = ["--space", "mmt1m", "--features", str(features), "--storage", str(tmp_path / "results")]
        assert run.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{folder}: another run is using this study (pid " in err
    with StudyLock(folder):  # released: a later run may take it
        pass


def test_resume_refuses_arguments_that_change_the_study(tmp_path):
    from mmt_tune.errors import InputError
    from mmt_tune.study.guards import IDENTITY_FILE, check_identity

    started = {
        "space": "mmt1m",
        "space_sha256": "a",
        "features_sha256": "b",
        "configurations": ["mmt1m/DWI"],
        "seed": 0,
        "epochs": None,
        "folds": None,
        "samples": 4,
    }
    (tmp_path / IDENTITY_FILE).write_text(__import__("json").dumps(started))
    check_identity(tmp_path, started, resume=True)  # the same arguments continue
    check_identity(tmp_path, {**started, "features_sha256": "c"}, resume=False)  # a new study: not checked
    for change, message in [
        ({"features_sha256": "c"}, "--resume with different --features (the table's content)"),
        ({"space": "paper"}, "--resume with different --space"),
        ({"seed": 1}, "--resume with different --seed"),
        ({"samples": 8}, "--resume cannot change --num-samples (started with 4, given 8)"),
    ]:
        with pytest.raises(InputError, match=__import__("re").escape(message)):
            check_identity(tmp_path, {**started, **change}, resume=True)


PRIVACY_STUDY = """
import sys
sys.path.insert(0, {tests!r})
from helpers import make_table
from mmt_tune.data.table import write_feature_table
from mmt_tune.study.entry import run_study
write_feature_table(make_table(40, signal={{"DWI": 1.5}}), {features!r}, {{}})
run_study("mmt1m", {features!r}, samples=1, epochs=2, folds=2, storage={storage!r}, name="private",
          configurations=["mmt1m/DWI"], wandb="offline", verbose=0)
"""


@pytest.mark.slow
def test_wandb_files_hold_neither_a_distinctive_host_name_nor_the_home_folder(tmp_path):
    """The study runs in its own UTS namespace under a made-up host name and home folder; no file W&B writes
    (uploaded or not) contains either."""
    import os
    import shutil
    import subprocess
    import sys

    host, home = "mmt-privacy-host-7731", tmp_path / "home-of-dr-jane-doe"
    home.mkdir()
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("needs `unshare --uts` (util-linux, and the right to make a UTS namespace)")
    script = PRIVACY_STUDY.format(
        tests=str(REPO / "tests"), features=str(tmp_path / "f.parquet"), storage=str(tmp_path / "r")
    )
    env = {**os.environ, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "WANDB_SILENT": "true"}
    done = subprocess.run(
        ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$0" -c "$1"', sys.executable, script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    files = [p for p in (tmp_path / "r" / "private" / "wandb").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files)
    for path in files:
        content = path.read_bytes()
        assert host.encode() not in content, f"host name in {path}"
        assert str(home).encode() not in content, f"home folder in {path}"


def test_a_small_or_lesion_level_table_is_said_to_change_the_folds_and_smote():
    from mmt_tune.spaces import load_space
    from mmt_tune.study.guards import table_notes

    configuration = load_space("mmt1m").configuration("mmt1m/DWI")
    assert table_notes(make_table(120), configuration, {}) == []
    small = make_table(20, positive_fraction=0.3)
    notes = table_notes(small, configuration, {"folds": 3})
    assert len(notes) == 1 and "Borderline-SMOTE uses" in notes[0] and "instead of 5" in notes[0]
    lesions = make_table(120)
    lesions.loc[1, "patient_id"] = lesions.loc[0, "patient_id"]
    assert "folds are grouped by patient" in table_notes(lesions, configuration, {})[0]


def test_every_configuration_s_optuna_study_opens_with_optuna_itself(ray_local, tmp_path):
    """The journal beside the trials table holds each configuration's study: Optuna's own tools (dashboard,
    visualization, importance) open it with every finished trial and its value."""
    import optuna

    from mmt_tune.data.table import write_feature_table
    from mmt_tune.records import JOURNAL_FILE
    from mmt_tune.study.entry import run_study
    from mmt_tune.study.search import open_storage

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(90, signal={"DWI": 1.5}), features, {})
    keys = ["logreg/DWI", "logreg/T1WI"]
    options = dict(
        samples=3, folds=3, storage=tmp_path / "results", wandb="off", verbose=0, configurations=keys
    )
    result = run_study("paper", features, **options)
    journal = result.experiment / JOURNAL_FILE
    names = {s.study_name for s in optuna.get_all_study_summaries(open_storage(journal))}
    assert names == set(keys)
    means = result.trials.groupby(["model", "present", "trial_id"])["auc"].mean()
    for key in keys:
        study = optuna.load_study(study_name=key, storage=open_storage(journal))
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
        model, present = key.split("/")
        assert sorted(t.value for t in study.trials) == pytest.approx(sorted(means.loc[(model, present)]))
        assert set(study.trials[0].params) == {"C", "l1_ratio", "k"}
    # a new study under the same name starts a new journal: old trials must not inform the new sampler
    again = run_study("paper", features, **{**options, "configurations": keys[:1]})
    study = optuna.load_study(study_name=keys[0], storage=open_storage(again.experiment / JOURNAL_FILE))
    assert len(study.trials) == 3


def test_report_every_n_epochs_reports_to_tune_every_n_and_still_logs_every_epoch_to_wandb(
    ray_local, tmp_path
):
    """--report-every 2 over 5 epochs: Tune gets epochs 1, 3 and the last (4), then the final report; W&B
    still gets every epoch's losses (fetched in one copy per report), with the AUC at the reported epochs."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from mmt_tune.data.table import write_feature_table
    from mmt_tune.errors import InputError
    from mmt_tune.study.entry import run_study

    table = make_table(60, signal={"DWI": 1.5})
    write_feature_table(table, tmp_path / "t.parquet", {})
    options = {"samples": 1, "epochs": 5, "folds": 2, "storage": tmp_path / "r", "verbose": 0}
    result = run_study(
        "mmt1m",
        tmp_path / "t.parquet",
        configurations=["mmt1m/DWI"],
        report_every=2,
        checkpoint_every=0,
        robustness=False,
        **options,
    )
    progress = pd.read_csv(next(result.experiment.glob("trial_*/progress.csv")))
    assert progress["epoch"].tolist() == [1, 3, 4, 4] and progress["done"].fillna(False).tolist()[-1]
    run = next((result.experiment / "wandb").glob("*/wandb/offline-run-*"))
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    records = subprocess.run(
        [wandb_cli, "leet", "inspect", "--json", str(run)], capture_output=True, text=True, check=True
    ).stdout
    history = [
        json.loads(line)["history"]["item"] for line in records.splitlines() if '"type":"history"' in line
    ]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3, 4]
    assert [h["epoch"] for h in history if "auc" in h] == [1, 3, 4]
    assert all("train/total" in h and "val/classification" in h for h in history)
    with pytest.raises(InputError, match="--report-every"):
        run_study("mmt1m", tmp_path / "t.parquet", report_every=0, name="x", **options)
    with pytest.raises(InputError, match="--compile: unknown torch.compile backend 'nope'"):
        run_study("mmt1m", tmp_path / "t.parquet", compile="nope", name="x", **options)
    assert not (tmp_path / "r" / "x").exists(), "refused before anything was written"
