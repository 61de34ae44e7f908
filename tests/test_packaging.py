"""The package as a user installs it: a wheel with its data files, console scripts and --version."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import REPO

from mmt_tune import __version__


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel`` of the working tree's files (no dependencies, no network), built from a copy so that a
    stale ``build/`` folder of an earlier build cannot add files the tree no longer has."""
    import shutil

    source = tmp_path_factory.mktemp("source") / "mmt-tune"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("mmt_tune-*.whl")
    return built


def test_the_wheel_ships_search_spaces_settings_and_the_console_script(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for space in ("paper", "paper-wide", "demo", "mmt1m", "mmt2m", "mfnvae"):
        assert f"mmt_tune/search_spaces/{space}.yaml" in names
    assert {"mmt_tune/radiomics/paper.yaml", "mmt_tune/radiomics/fast.yaml"} <= names
    assert {"mmt_tune/analysis/importance/cli.py", "mmt_tune/study/launcher.py"} <= names
    # no generic top-level name in site-packages: `python -m analysis.importance` is the checkout's
    assert {n.split("/")[0] for n in names if not n.startswith("mmt_tune-")} == {"mmt_tune"}
    assert not any(name.startswith(("tests/", "benchmarks/", "docs/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "mmt-tune = mmt_tune.cli:main" in text
    assert wheel.name.startswith(f"mmt_tune-{__version__}-")


def test_the_wheel_carries_the_license_its_metadata_and_the_typing_marker(wheel):
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    license_file = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    assert "BSD 3-Clause License" in archive.read(license_file).decode()  # the notice BSD-3 requires to ship
    assert "mmt_tune/py.typed" in names
    metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: BSD-3-Clause" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    assert "Classifier: Typing :: Typed" in metadata


def test_every_command_has_version_and_the_dispatcher_knows_them(capsys):
    from mmt_tune import cli

    assert cli.main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"mmt-tune {__version__}"
    assert cli.main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit) as done:
            cli.main([command, "--version"])
        assert done.value.code == 0, command
        assert capsys.readouterr().out.strip() == f"mmt-tune {__version__}", command


@pytest.mark.slow
def test_plain_pip_installs_the_wheel_into_a_fresh_venv_which_runs_a_study_and_its_report(wheel, tmp_path):
    """``pip install mmt_tune-*.whl`` in a new virtualenv, with the package index as it is (no bootstrap, no
    borrowed packages), then from a folder holding a decoy ``analysis/`` package: import a radiomics table
    (the breast-cancer table with sequence prefixes), run a study of ``paper-wide`` on it and its report."""
    from mmt_tune.data.public import breast_cancer_table

    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    bin_dir = env_dir / "bin"
    install = subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp_path / "work"
    (work / "analysis").mkdir(parents=True)
    (work / "analysis" / "__init__.py").write_text("raise ImportError('the decoy was imported')\n")
    table = breast_cancer_table()
    wide = table[["patient_id", "label"]].rename(columns={"patient_id": "ID", "label": "Target"})
    for column in table.columns:
        if "__" in column:
            sequence, feature = column.split("__", 1)
            wide[f"{sequence}_{feature}"] = table[column]
    wide.to_csv(work / "cohort.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '')}", PYTHONNOUSERSITE="1", RAY_USAGE_STATS_ENABLED="0")

    def mmt_tune(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [bin_dir / "mmt-tune", *args], cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, (args, done.stderr[-3000:])
        return done

    mmt_tune("convert", "cohort.csv", "--out", "features.parquet")
    located = subprocess.run(
        [bin_dir / "python", "-c", "import mmt_tune; print(mmt_tune.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert located.stdout.strip().startswith(str(env_dir)), "the installed copy, not the tree"
    mmt_tune(
        "run", "--space", "paper-wide", "--features", "features.parquet", "--smoke-test", "--wandb", "off"
    )
    assert (work / "results" / "paper-wide" / "trials.parquet").is_file()
    mmt_tune("report", "results/paper-wide")
    assert list((work / "results" / "paper-wide").glob("*/index.html"))


def test_pyradiomics_and_fanova_are_optional_and_their_absence_is_one_line_or_a_stated_fallback(
    wheel, tmp_path
):
    """A plain ``pip install`` cannot build PyRadiomics 3.1.0 or pyrfr, so neither is a requirement: the wheel
    asks for them only as extras, extraction without PyRadiomics is one line, and importance without fanova
    uses Optuna's fANOVA and says so."""
    archive = zipfile.ZipFile(wheel)
    metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    for name, extra in (("pyradiomics", "extract"), ("fanova", "fanova"), ("trimesh", "extract")):
        lines = [line for line in requires if line.split()[1].lower().startswith(name)]
        assert lines and all(f'extra == "{extra}"' in line for line in lines), lines
    # Both are installed here (the bootstrap builds them); a None entry in sys.modules makes Python's own
    # import raise ImportError, exactly as on a machine without them, with nothing else changed.
    missing = "import sys; sys.modules['radiomics'] = None; sys.modules['fanova'] = None\n"
    manifest = tmp_path / "m.csv"
    manifest.write_text("patient_id,label,T1WI_image,T1WI_mask\np1,1,a.nii.gz,b.nii.gz\n")
    extract = subprocess.run(
        [
            sys.executable,
            "-c",
            missing + "from mmt_tune.radiomics.cli import main\n"
            f"sys.exit(main(['--manifest', '{manifest}', '--params', 'paper', '--out', '{tmp_path / 'f.parquet'}']))",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert extract.returncode == 2 and extract.stderr.count("\n") == 1, extract.stderr
    assert (
        extract.stderr.startswith("error: PyRadiomics is not installed") and "bootstrap.sh" in extract.stderr
    )
    assert not (tmp_path / "f.parquet").exists()
    analysis = subprocess.run(
        [
            sys.executable,
            "-c",
            missing + "from mmt_tune.analysis.importance.study import importance\n"
            "from mmt_tune.analysis.results import Study\n"
            "from mmt_tune.analysis.synthetic import paper_space, synthetic_trials\n"
            "space = {k: v for k, v in paper_space().items() if k == 'mmt1m/DWI'}\n"
            "result = importance(Study('s', synthetic_trials(space, 12, seed=0), space=space))\n"
            "print(result.options.engine); print(result.notes[0]); print(sorted(result.configurations[0].main))",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    engine, note, main_effects = analysis.stdout.strip().splitlines()[-3:]
    assert engine == "optuna" and note.startswith("the fanova package is not installed")
    assert "beta" in main_effects
