"""Sweep of the deep models' training defaults: lr x weight decay x dropout x epochs.

On the phantom cohort and scikit-learn's breast-cancer table (see :mod:`mmt_tune.data.public`), for a few
representative configurations, every combination of ``--lr``, ``--weight-decay`` and ``--dropout`` trains
once for the largest epoch count; the AUC at smaller epoch counts is read off the same run (a run of E
epochs is exactly the first E epochs of a longer one: batches and noise are drawn epoch by epoch). Each
cell is the mean validation AUC over the same 5 stratified folds (seed 0) that the in-fold logistic
regression baseline (``logreg``, defaults) is scored on, printed beside it.

    python benchmarks/sweep_defaults.py [--workers 2] [--out benchmarks/results/sweep_defaults.csv]

Torch runs single-threaded in each worker process (the workers are the parallelism).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

CASES = [
    ("phantom", "mmt1m", ("DWI",)),
    ("phantom", "mmt2m", ("T1WI", "DWI")),
    ("phantom", "mfnvae", ("T1WI", "FLAIR", "DWI")),
    ("breast", "mmt1m", ("FLAIR",)),
    ("breast", "mfnvae", ("FLAIR",)),
]


COLUMNS = ["dataset", "model", "present", "lr", "weight_decay", "dropout", "epochs", "auc", "variant", "key"]


def realign(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows a first version of this script appended in another column order (variant, epochs, auc)."""
    frame = frame.copy()
    shifted = frame["epochs"].astype(str).str.contains("=")
    variant = frame.loc[shifted, "epochs"].copy()
    frame.loc[shifted, "epochs"] = frame.loc[shifted, "auc"]
    frame.loc[shifted, "auc"] = frame.loc[shifted, "variant"]
    frame.loc[shifted, "variant"] = variant
    frame["auc"] = frame["auc"].astype(float)
    frame["variant"] = frame["variant"].fillna("").astype(str)
    return frame


def load(dataset: str) -> pd.DataFrame:
    if dataset == "breast":
        from mmt_tune.data.public import breast_cancer_table

        return breast_cancer_table()
    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.data.table import read_feature_table

    return read_feature_table(phantom_features(progress=False))[0]


def run_one(job: dict) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from mmt_tune.config import TrainConfig
    from mmt_tune.metrics import auc
    from mmt_tune.training.crossval import train_configuration

    table = load(job["dataset"])
    options = {k: job[k] for k in ("lr", "weight_decay", "dropout") if k in job}
    options.update(job.get("extra", {}))
    config = TrainConfig.from_options(job["model"], job["present"], options, epochs=max(job["epochs"]))
    marks = {e - 1 for e in job["epochs"]}
    per_epoch = {}

    def on_epoch(epoch, info):
        if epoch in marks:
            p = info.val_probabilities.cpu().numpy()
            y = info.val_labels.cpu().numpy()
            per_epoch[epoch + 1] = float(
                np.mean([auc(y[i, :n], p[i, :n]) for i, n in enumerate(info.val_counts)])
            )

    result = train_configuration(table, config, on_epoch=on_epoch)
    rows = []
    for epochs, value in sorted(per_epoch.items()):
        rows.append(
            {**{k: v for k, v in job.items() if k not in ("epochs", "extra")}, "epochs": epochs, "auc": value}
        )
    if config.early_stopping:  # the run's own result (stopped per fold) is the one that counts
        rows = [
            {
                **{k: v for k, v in job.items() if k not in ("epochs", "extra")},
                "epochs": "early",
                "auc": float(result.folds["auc"].mean()),
            }
        ]
    for row in rows:
        row["present"] = "+".join(job["present"])
        row["variant"] = job.get("variant", "")
    return rows


def baseline(dataset: str, present) -> float:
    from mmt_tune.config import TrainConfig
    from mmt_tune.training.crossval import train_configuration

    return float(
        train_configuration(load(dataset), TrainConfig.from_options("logreg", present, {}))
        .folds["auc"]
        .mean()
    )


def jobs(epochs: list[int]) -> list[dict]:
    """lr x dropout at weight decay 0.01, weight decay 0.1 at dropout 0.1, early stopping, KL warm-up."""
    grid = [(lr, 1e-2, dropout) for lr in (1e-5, 1e-4, 1e-3) for dropout in (0.1, 0.3)]
    grid += [(lr, 1e-1, 0.1) for lr in (1e-5, 1e-4, 1e-3)]
    out = []
    for dataset, model, present in CASES:
        base = {"dataset": dataset, "model": model, "present": present}
        for lr, wd, dropout in grid:
            out.append({**base, "lr": lr, "weight_decay": wd, "dropout": dropout, "epochs": epochs})
        # Early stopping on held-out training rows (patience 20), default decay and dropout.
        for lr in (1e-4, 1e-3):
            out.append(
                {
                    **base,
                    "lr": lr,
                    "weight_decay": 1e-2,
                    "dropout": 0.1,
                    "epochs": [max(epochs)],
                    "extra": {"early_stopping": 20},
                    "variant": "early_stopping=20",
                }
            )
        if model == "mfnvae":
            out.append(
                {
                    **base,
                    "lr": 1e-3,
                    "weight_decay": 1e-2,
                    "dropout": 0.1,
                    "epochs": epochs,
                    "extra": {"kl_warmup": 50},
                    "variant": "kl_warmup=50",
                }
            )
    return out


def job_key(job: dict) -> str:
    return "|".join(
        str(job.get(k, ""))
        for k in ("dataset", "model", "present", "lr", "weight_decay", "dropout", "variant")
    )


def summarize(frame: pd.DataFrame) -> list[str]:
    """Markdown: per case, AUC by setting (rows) and epochs (columns); then settings ranked by their mean AUC
    minus the in-fold logistic regression's over all cases."""
    frame = frame.copy()
    frame["epochs"] = frame["epochs"].astype(str)
    frame["setting"] = [
        f"lr {lr:g}, wd {wd:g}, dropout {d:g}" + (f", {v}" if v else "")
        for lr, wd, d, v in zip(
            frame["lr"], frame["weight_decay"], frame["dropout"], frame["variant"], strict=True
        )
    ]
    order = [e for e in ("25", "50", "100", "200", "early") if e in set(frame["epochs"])]
    lines = []
    for (dataset, model, present), rows in frame.groupby(["dataset", "model", "present"], sort=False):
        table = rows.pivot_table(index="setting", columns="epochs", values="auc", sort=False).reindex(
            columns=order
        )
        lines += [
            f"**{dataset}, {model}, {present}** (in-fold logistic regression: {rows['logreg_auc'].iloc[0]:.3f})",
            "",
            "| setting | "
            + " | ".join(f"{e} epochs" if e != "early" else "early stop" for e in order)
            + " |",
            "| --- |" + " ---: |" * len(order),
        ]
        for setting, values in table.iterrows():
            cells = ["" if pd.isna(v) else f"{v:.3f}" for v in values]
            lines.append(f"| {setting} | " + " | ".join(cells) + " |")
        lines.append("")
    frame["gap"] = frame["auc"] - frame["logreg_auc"]
    cases = frame.groupby(["dataset", "model", "present"]).ngroups
    ranked = (
        frame.groupby(["setting", "epochs"])
        .agg(gap=("gap", "mean"), worst=("gap", "min"), cases=("gap", "size"))
        .query("cases == @cases")
        .sort_values("gap", ascending=False)
        .head(8)
    )
    lines += [
        f"Settings over all {cases} cases, by mean AUC minus the logistic regression's (best first):",
        "",
        "| setting | epochs | mean gap | worst gap |",
        "| --- | --- | ---: | ---: |",
        *[
            f"| {setting} | {epochs} | {r.gap:+.3f} | {r.worst:+.3f} |"
            for (setting, epochs), r in ranked.iterrows()
        ],
    ]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", default="25,50,100,200", help="epoch counts read off each run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sweep_defaults.csv")
    parser.add_argument("--summarize", action="store_true", help="only print the summary of --out")
    args = parser.parse_args(argv)
    if args.summarize:
        print(
            "\n".join(
                summarize(realign(pd.read_csv(args.out, dtype={"epochs": str, "variant": str, "auc": str})))
            )
        )
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    load("phantom")  # extract once, before the workers start
    todo = jobs([int(e) for e in args.epochs.split(",")])
    # Rows are appended as jobs finish, so an interrupted sweep continues where it stopped.
    partial = args.out.with_suffix(".partial.csv")
    done = set(pd.read_csv(partial)["key"]) if partial.is_file() else set()
    todo = [job for job in todo if job_key(job) not in done]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool:
        for i, (job, result) in enumerate(zip(todo, pool.map(run_one, todo), strict=True)):
            frame = pd.DataFrame(result).assign(key=job_key(job))[COLUMNS]
            frame.to_csv(partial, mode="a", header=not partial.is_file(), index=False)
            print(f"{i + 1}/{len(todo)} {result[-1]}", flush=True)
    frame = realign(pd.read_csv(partial, dtype=str))
    for column in ("lr", "weight_decay", "dropout"):
        frame[column] = frame[column].astype(float)
    reference = {
        key: baseline(key[0], key[1].split("+"))
        for key in set(zip(frame["dataset"], frame["present"], strict=True))
    }
    frame["logreg_auc"] = [reference[key] for key in zip(frame["dataset"], frame["present"], strict=True)]
    frame.drop(columns="key").to_csv(args.out, index=False)
    partial.unlink()
    print("\n".join(summarize(frame)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
