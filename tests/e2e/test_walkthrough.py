"""The README's "Your own cohort", run as written: from a folder of images (16 patients made from
PyRadiomics' two brain MRI cases) to predictions for new patients, one of them without FLAIR, and from a
public radiomics table (Meningioma) to a report. Only the study is shrunk: flags appended to ``run``."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, SHARED

pytestmark = pytest.mark.slow

CASES = SHARED / "reference" / "pyradiomics-cases"
MENINGIOMA = SHARED / "reference" / "radmlbench" / "Meningioma-SEG-CLASS.csv.gz"
# One trial per configuration, short and quiet: the only change to the README's commands.
SHRINK = ["--num-samples", "1", "--epochs", "3", "--folds", "2", "--wandb", "off", "--no-progress"]


def readme_blocks() -> list[list[str]]:
    """The commands of each bash block in the README's "Your own cohort" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own cohort", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```bash\n")[1:]]
    return [[line for line in block.splitlines() if line.startswith("mmt-tune ")] for block in blocks]


def run_as_written(command: str, work: Path) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    assert argv[0] == "mmt-tune"
    if argv[1] == "run":
        argv += SHRINK
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "mmt_tune.cli", *argv[1:]],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (command, done.stderr[-3000:])
    return done


def write_patient(folder: Path, base: int, rng: np.random.Generator, positive: bool, sequences) -> None:
    """Two sequences from one real brain MRI case, cropped around its lesion: T1 as scanned with noise, FLAIR
    a monotone remap; a positive patient's lesion 15% brighter (a signal for the study to find)."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(CASES / f"brain{base}_image.nrrd"), sitk.sitkFloat32)
    mask = sitk.ReadImage(str(CASES / f"brain{base}_label.nrrd"))
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(mask)
    x, y, z, sx, sy, sz = shape.GetBoundingBox(1)
    lower = [max(0, v - 8) for v in (x, y, z)]
    upper = [min(n, v + s + 8) for v, s, n in zip((x, y, z), (sx, sy, sz), image.GetSize(), strict=True)]
    size = [u - lo for u, lo in zip(upper, lower, strict=True)]
    image = sitk.RegionOfInterest(image, size, lower)
    mask = sitk.RegionOfInterest(mask, size, lower)
    values = sitk.GetArrayFromImage(image)
    lesion = sitk.GetArrayFromImage(mask) == 1
    values = values * rng.uniform(0.9, 1.1) + rng.normal(0, 0.05 * values.std(), values.shape)
    if positive:
        values[lesion] *= 1.15
    folder.mkdir(parents=True)
    for sequence in sequences:
        data = values if sequence == "T1" else np.sqrt(np.clip(values, 0, None)) * 10
        out = sitk.GetImageFromArray(data.astype(np.float32))
        out.CopyInformation(image)
        sitk.WriteImage(out, str(folder / f"{sequence}.nii.gz"))
        sitk.WriteImage(mask, str(folder / f"{sequence}_mask.nii.gz"))


# The volumes live in ../shared (not in the repository); PyRadiomics is an extra a plain install lacks.
@pytest.mark.skipif(not CASES.is_dir(), reason=f"PyRadiomics' brain MRI cases are not at {CASES}")
def test_from_a_folder_of_images_to_predictions_for_new_patients(tmp_path):
    pytest.importorskip("radiomics")
    rng = np.random.default_rng(0)
    labels = []
    for i in range(16):
        positive = i % 2 == 0
        write_patient(tmp_path / "cohort" / f"P{i:02d}", 1 + i % 2, rng, positive, ("T1", "FLAIR"))
        labels.append({"patient_id": f"P{i:02d}", "label": "high" if positive else "low"})
    pd.DataFrame(labels).to_csv(tmp_path / "labels.csv", index=False)
    for i, sequences in enumerate([("T1", "FLAIR"), ("T1", "FLAIR"), ("T1",)]):
        write_patient(tmp_path / "new" / f"N{i}", 1 + i % 2, rng, i == 0, sequences)

    (commands, _) = readme_blocks()
    outputs = [run_as_written(command, tmp_path) for command in commands]

    trials = pd.read_parquet(tmp_path / "results" / "cohort" / "trials.parquet")
    assert set(trials["study"]) == {"cohort"} and (trials["status"] == "ok").all()
    # paper-wide on T1/FLAIR: MMT-1M on each, MFN-VAE and both baselines on T1, FLAIR and both
    assert len(set(trials["model"] + "/" + trials["present"])) == 11
    assert (tmp_path / "results" / "cohort" / "analysis" / "index.html").is_file()
    assert "no labels" in outputs[5].stdout  # scan of the new patients
    for extract in (outputs[1], outputs[6]):  # Ray's own notices stay quiet without --verbose
        assert "WARNING" not in extract.stderr and "INFO" not in extract.stderr, extract.stderr
    predictions = pd.read_csv(tmp_path / "predictions.csv", dtype={"patient_id": str})
    assert predictions["patient_id"].tolist() == ["N0", "N1", "N2"]
    assert predictions["probability"].notna().all()
    assert set(predictions["positive_class"]) == {"high"}
    without_flair = predictions.set_index("patient_id").loc["N2"]
    assert without_flair["available"] == "T1" and "FLAIR" not in without_flair["reads"]


# The public table lives in ../shared (its licence keeps it out of the repository).
@pytest.mark.skipif(not MENINGIOMA.is_file(), reason=f"the Meningioma table is not at {MENINGIOMA}")
def test_from_a_radiomics_table_to_a_report(tmp_path):
    shutil.copy(MENINGIOMA, tmp_path / "table.csv.gz")
    (_, commands) = readme_blocks()
    for command in commands:
        run_as_written(command, tmp_path)
    trials = pd.read_parquet(tmp_path / "results" / "table" / "trials.parquet")
    assert set(trials["study"]) == {"table"} and (trials["status"] == "ok").all()
    configurations = set(trials["model"] + "/" + trials["present"])
    assert {"mmt1m/FLAIR", "mmt1m/T1", "mfnvae/FLAIR+T1", "forest/FLAIR+T1"} <= configurations
    assert len(configurations) == 11
    assert (tmp_path / "results" / "table" / "analysis" / "index.html").is_file()
