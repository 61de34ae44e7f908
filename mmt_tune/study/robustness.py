"""Missing-modality robustness, measured after the search (docs/method.md "Missing-modality robustness").

The paper's premise is a patient who lacks a sequence at test time. Two ways to score such a patient are
compared on the study's own folds, for every non-empty subset of the modalities:

- the model trained for exactly that subset (the study's configurations; the analysis reads them from the
  trials table, nothing is retrained), and
- one full-modality model that fuses any subset (MFN-VAE, :attr:`ModelSpec.subsets`): its best trial is
  retrained with the same folds and seeds and each fold's validation rows are scored with the other
  modalities dropped (the product of the remaining experts); its all-modality scores equal the trial's.
- optionally the same model trained with modality dropout (random expert subsets per row,
  ``--modality-dropout P``).

Written to ``robustness.csv``: one row per variant x test subset x fold with the five metrics.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmt_tune.modalities import subsets_of

ROBUSTNESS_FILE = "robustness.csv"
DROPPED = "dropped at test"


def evaluate_robustness(
    table: pd.DataFrame,
    trials: pd.DataFrame,
    modalities: tuple[str, ...],
    seed: int,
    folder: Path,
    modality_dropout: float = 0.0,
) -> pd.DataFrame | None:
    """Score the best full-modality subset-capable configuration's folds with every modality subset (and,
    with ``modality_dropout``, the same configuration retrained with it); write ``robustness.csv``. None
    when the study has no such configuration."""
    from dataclasses import replace

    from mmt_tune import models
    from mmt_tune.records import best_trials
    from mmt_tune.training.crossval import train_configuration
    from mmt_tune.training.refit import best_configurations

    best = best_trials(trials)
    full = "+".join(modalities)
    capable = [m for m in models.names() if models.get(m).subsets]
    rows = best[(best["present"] == full) & best["model"].isin(capable)]
    if rows.empty:
        return None
    row = rows.sort_values("auc_mean", ascending=False).iloc[:1]
    ((config, _),) = best_configurations(row, modalities, seed)
    variants = [(DROPPED, config)]
    if modality_dropout > 0:
        options = {**config.model_options, "modality_dropout": modality_dropout}
        variants.append((f"modality dropout {modality_dropout:g}", replace(config, model_options=options)))
    frames = []
    for name, variant in variants:
        result = train_configuration(table, variant, subsets=subsets_of(modalities))
        frame = result.subset_folds.assign(variant=name, model=config.model, trained=full)
        frame.insert(0, "trial_id", row["trial_id"].iloc[0])
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    from mmt_tune._io import atomic_path

    with atomic_path(folder / ROBUSTNESS_FILE) as tmp:
        out.to_csv(tmp, index=False)
    return out
