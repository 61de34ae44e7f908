"""Missing-modality robustness on real tables: one full-modality MFN-VAE with sequences dropped at test time,
with and without modality-dropout training, vs a model trained for exactly each subset, and the in-fold
logistic regression on the same folds.

Tables: scikit-learn's breast-cancer table (569 patients; mean / error / worst as three "modalities", see
:mod:`mmt_tune.data.public`) and the two radMLBench MRI tables (``../shared/reference/radmlbench``). For every
non-empty subset of the table's modalities: MFN-VAE trained on all and scored with only that subset
(``train_configuration(subsets=...)``), the same trained with ``modality_dropout=0.5``, MFN-VAE trained for
exactly the subset, and ``logreg`` trained for exactly the subset; all at their defaults, 5 stratified folds,
seeds 0-2 (mean fold AUC, then the mean over seeds). One torch thread.

    python benchmarks/robustness_check.py [--tables breast,Meningioma-SEG-CLASS,Brancato2023] [--record]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, report  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/radmlbench"


def load(name: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    if name == "breast":
        from mmt_tune.data.public import breast_cancer_table
        from mmt_tune.modalities import table_modalities

        table = breast_cancer_table()
        return table, table_modalities(list(table.columns))
    from radmlbench_check import load as load_radmlbench  # the same import, under the tables' own names

    return load_radmlbench(REFERENCE, name)


def main(argv=None) -> int:
    import torch

    from mmt_tune.config import TrainConfig
    from mmt_tune.modalities import subsets_of
    from mmt_tune.training.crossval import train_configuration

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tables", default="breast,Meningioma-SEG-CLASS,Brancato2023")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = [
        "| table | test-time subset | MFN-VAE (all), dropped | + modality dropout 0.5 | MFN-VAE for the subset "
        "| logreg for the subset |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name in args.tables.split(","):
        table, modalities = load(name)
        subsets = subsets_of(modalities)
        scores: dict[tuple[str, str], list[float]] = {}
        for seed in seeds:
            for variant, options in (("dropped", {}), ("dropout", {"modality_dropout": 0.5})):
                config = TrainConfig.from_options(
                    "mfnvae", modalities, options, modalities=modalities, seed=seed
                )
                folds = train_configuration(table, config, subsets=subsets).subset_folds
                for subset, group in folds.groupby("subset"):
                    scores.setdefault((variant, subset), []).append(float(group["auc"].mean()))
            for subset in subsets:
                for model in ("mfnvae", "logreg"):
                    config = TrainConfig.from_options(model, subset, {}, modalities=modalities, seed=seed)
                    auc = float(train_configuration(table, config).folds["auc"].mean())
                    scores.setdefault((model, "+".join(subset)), []).append(auc)
        for subset in subsets:
            key = "+".join(subset)
            cells = [f"{np.mean(scores[(v, key)]):.3f}" for v in ("dropped", "dropout", "mfnvae", "logreg")]
            lines.append(f"| {name} | {key} | " + " | ".join(cells) + " |")
        print("\n".join(lines[-len(subsets) :]), flush=True)
    lines += [
        "",
        f"Seeds {', '.join(map(str, seeds))}; mean fold AUC, mean over seeds; {load_average()} at the end.",
    ]
    report("robustness", "Missing-modality robustness on real tables", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
