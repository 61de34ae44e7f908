"""Acceptance check: do the tuned deep models earn their place beside tuned classical baselines?

For each dataset (the 279-patient phantom cohort and scikit-learn's breast-cancer table, split into three
"modalities" as in :mod:`mmt_tune.data.public`) one study of a shipped search space runs every configuration
of the paper's Table 2 and both baselines (logistic regression, random forest) on each modality subset, with
the same trial budget per configuration and the same folds (study seed). Then, per deep configuration, the
best trial's mean validation AUC is set beside the better baseline's on the same present modalities.

    python benchmarks/acceptance.py [--space paper-wide] [--samples 8] [--epochs E] [--datasets phantom,breast]
        [--record]

Target: the best deep model of each configuration within 0.02 AUC of the tuned baseline. Both are
best-of-N on the folds they are reported on, so both are optimistic by about the same selection effect.
An interrupted run resumes its studies (``--storage``, default a folder under the system's temp dir).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402

TARGET = 0.02


def features_for(dataset: str, storage: Path) -> Path:
    if dataset == "phantom":
        from mmt_tune.data.phantom import phantom_features

        return phantom_features(progress=False)
    from mmt_tune.data.public import breast_cancer_table
    from mmt_tune.data.table import write_feature_table

    path = storage / "breast-cancer.parquet"
    if not path.is_file():
        write_feature_table(breast_cancer_table(), path, {"source": "sklearn.datasets.load_breast_cancer"})
    return path


def compare(metrics) -> list[dict]:
    """Per deep configuration: its best trial vs the better baseline on the same present modalities."""
    from mmt_tune.analysis.comparisons import best_baselines
    from mmt_tune.analysis.results import baseline_models, model_label

    best = metrics.best.dropna(subset=["trial_id"])
    baselines = best_baselines(best, "auc")
    auc = {
        (m, p): (mean, std)
        for m, p, mean, std in zip(
            best["model"], best["present"], best["auc_mean"], best["auc_std"], strict=True
        )
    }
    rows = []
    for model, present in zip(best["model"], best["present"], strict=True):
        if model in baseline_models():
            continue
        reference = baselines.get(present)
        deep_mean, deep_std = auc[(model, present)]
        base_mean, base_std = auc[reference] if reference else (float("nan"), float("nan"))
        difference = deep_mean - base_mean
        # descriptive, not a test: the differences are not tested for significance here (the report's
        # comparisons do that, with the corrected resampled t-test and Holm's adjustment)
        verdict = (
            "higher" if difference > 0 else ("within 0.02" if difference >= -TARGET else "lower by > 0.02")
        )
        rows.append(
            {
                "configuration": f"{model_label(model)} {present}",
                "deep": f"{deep_mean:.3f} ± {deep_std:.3f}",
                "baseline": f"{model_label(reference[0]) if reference else '-'} {base_mean:.3f} ± {base_std:.3f}",
                "difference": difference,
                "verdict": verdict,
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", default="paper-wide")
    parser.add_argument("--samples", type=int, default=8, help="trials per configuration (deep and baseline)")
    parser.add_argument("--datasets", default="phantom,breast")
    parser.add_argument("--epochs", type=int, default=None, help="override the space's epochs (deep models)")
    parser.add_argument("--storage", type=Path, default=Path(tempfile.gettempdir()) / "mmt-acceptance")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)

    from ray import tune

    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.results import load_study
    from mmt_tune.study.entry import run_study

    args.storage.mkdir(parents=True, exist_ok=True)
    lines = []
    for dataset in args.datasets.split(","):
        features = features_for(dataset, args.storage)
        name = f"acceptance-{dataset}-{args.space}"
        experiment = args.storage / name
        start = time.perf_counter()
        result = run_study(
            args.space,
            features,
            samples=args.samples,
            epochs=args.epochs,
            storage=args.storage,
            name=name,
            resume=experiment.is_dir() and tune.Tuner.can_restore(str(experiment)),
            wandb="off",
            verbose=0,
        )
        minutes = (time.perf_counter() - start) / 60
        metrics = aggregate(load_study(result.experiment))
        rows = compare(metrics)
        majority = next((n for n in metrics.notes if n.startswith("majority")), "")
        epochs = args.epochs or "the space's"
        met = sum(r["verdict"] != "lower by > 0.02" for r in rows)
        lines += [
            f"**{dataset}** ({args.space}, {args.samples} trials per configuration, deep and baseline alike; "
            f"{epochs} epochs, 5 folds, seed 0; {minutes:.0f} min; {majority}): "
            f"{met} of {len(rows)} deep configurations "
            f"within {TARGET} AUC of the better tuned baseline or above it.",
            "",
            "| configuration | deep, best trial AUC | better baseline, best trial AUC | difference | verdict |",
            "| --- | --- | --- | ---: | --- |",
            *[
                f"| {r['configuration']} | {r['deep']} | {r['baseline']} | {r['difference']:+.3f} | {r['verdict']} |"
                for r in rows
            ],
            "",
        ]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines.append(
        f"Load: `{load}`; torch threads per trial: 1 (Ray sets OMP_NUM_THREADS=1); CPU count {os.cpu_count()}."
    )
    report("acceptance", "Deep models vs tuned baselines", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
