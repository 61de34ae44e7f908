"""The numbers a refactoring must not change, as sha256 digests: run before and after, compare the two files.

Through the command lines only (they keep their names when modules move), on the breast-cancer table
(569 real patients, three feature groups as three sequences), one torch thread:

- the trainer (``python -m mmt_tune.train``): folds.csv, losses.csv and predictions.csv of MMT-1M, MMT-2M
  with early stopping, MFN-VAE with modality dropout, logistic regression and a random forest;
- a two-configuration study (``python -m mmt_tune.run``, logistic regression and MMT-1M, 2 trials each): its
  trials table, ordered, without Tune's random trial ids;
- a bundle of that study (``python -m mmt_tune.fit``) and its predictions (``python -m mmt_tune.predict``).

    .venv/bin/python scripts/fingerprint.py --out before.json
    ... change the code ...
    .venv/bin/python scripts/fingerprint.py --out after.json --compare before.json

About 3 minutes on 2 cores. Exit code 1 when ``--compare`` finds a difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TRAINER = {
    "mmt1m": ("mmt1m", "T1WI", {"epochs": 6, "d_model": 16, "hidden": 32, "lr": 1e-3}),
    "mmt2m-early-stopping": (
        "mmt2m",
        "T1WI+FLAIR",
        {"epochs": 8, "d_model": 16, "hidden": 32, "lr": 1e-3, "early_stopping": 3},
    ),
    "mfnvae-modality-dropout": ("mfnvae", "T1WI+FLAIR+DWI", {"epochs": 6, "modality_dropout": 0.5}),
    "logreg": ("logreg", "T1WI+DWI", {"C": 0.3}),
    "forest": ("forest", "FLAIR+DWI", {"n_estimators": 50}),
}

SPACE = """name: fingerprint
description: two configurations for the refactoring fingerprint
configurations:
  - {model: logreg, present: [T1WI, FLAIR, DWI]}
  - {model: mmt1m, present: [DWI]}
parameters:
  lr: {distribution: loguniform, low: 1.0e-4, high: 1.0e-3}
  C: {distribution: loguniform, low: 0.01, high: 1.0}
fixed:
  epochs: 4
  d_model: 16
  hidden: 32
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def call(*args: str) -> None:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args[:1])} failed:\n{done.stderr[-3000:]}")


def fingerprint(work: Path) -> dict[str, str]:
    import pandas as pd
    import yaml

    from mmt_tune.data.public import breast_cancer_table
    from mmt_tune.data.table import write_feature_table

    table = breast_cancer_table()
    features = work / "features.parquet"
    write_feature_table(table, features, {})
    digests = {}
    for name, (model, present, options) in TRAINER.items():
        config, out = work / f"{name}.yaml", work / name
        config.write_text(yaml.safe_dump(options))
        call("mmt_tune.train", "--features", str(features), "--model", model, "--present", present,
             "--config", str(config), "--folds", "3", "--threads", "1", "--out", str(out))  # fmt: skip
        for part in ("folds", "losses", "predictions"):
            digests[f"train/{name}/{part}.csv"] = sha256(out / f"{part}.csv")
    space = work / "space.yaml"
    space.write_text(SPACE)
    call("mmt_tune.run", "--space", str(space), "--features", str(features), "--num-samples", "2",
         "--folds", "3", "--storage", str(work / "results"), "--name", "study", "--wandb", "off",
         "--no-robustness")  # fmt: skip
    trials = pd.read_parquet(work / "results" / "study" / "trials.parquet")
    trials = trials.drop(columns=["trial_id"]).sort_values(
        ["model", "present", "config/lr", "config/C", "fold"]
    )
    stable = work / "trials.csv"
    trials.to_csv(stable, index=False, float_format="%.17g")
    digests["study/trials (no trial ids)"] = sha256(stable)
    call("mmt_tune.fit", "--study", str(work / "results" / "study"), "--features", str(features),
         "--out", str(work / "bundle"))  # fmt: skip
    call("mmt_tune.predict", "--bundle", str(work / "bundle"), "--features", str(features),
         "--out", str(work / "predictions.csv"))  # fmt: skip
    digests["bundle/predictions.csv"] = sha256(work / "predictions.csv")
    return digests


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON of the digests to write")
    parser.add_argument("--compare", type=Path, default=None, help="an earlier --out to compare with")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmt-fingerprint-") as tmp:
        digests = fingerprint(Path(tmp))
    args.out.write_text(json.dumps(digests, indent=2) + "\n")
    for name, digest in digests.items():
        print(f"{digest[:16]}  {name}")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    changed = [name for name in before.keys() | digests.keys() if before.get(name) != digests.get(name)]
    for name in sorted(changed):
        print(f"changed: {name}")
    print(f"{len(digests) - len(changed)} of {len(digests)} identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
