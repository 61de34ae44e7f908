"""Cross-validate one configuration (model x present modalities x hyperparameters) over k folds.

For every fold the in-fold pipeline (:mod:`mmt_tune.training.preprocess`) is fitted on that fold's training
rows (through the fold cache, :mod:`mmt_tune.training.fold_cache`); then a deep model's k folds train
*packed*, as one batched model (:mod:`mmt_tune.training.trainer`), and a classical baseline fits one
scikit-learn estimator per fold. ``packed=False`` trains the folds one after another through the same code
with one slice each; both give the same fold metrics for the same seed.

No Ray imports: the Tune trainable calls :func:`train_configuration`; so does ``python -m mmt_tune.train``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS, all_metrics
from mmt_tune.training.fold_cache import prepare_folds
from mmt_tune.training.preprocess import FoldData, make_repeated_folds, modality_columns_of
from mmt_tune.training.trainer import EpochInfo, Layout, fit_packed, resolve_device


@dataclass
class TrainResult:
    folds: pd.DataFrame  # one row per fold: fold, sizes, the five metrics
    losses: pd.DataFrame  # one row per (epoch, fold, split): every loss term and the weighted total
    predictions: pd.DataFrame  # out-of-fold positive-class probability of every row
    selected: dict[int, dict[str, list[str]]]  # fold -> modality -> selected feature columns
    seconds: float = 0.0
    # subsets=: one row per (test-time modality subset, fold) with the five metrics (the robustness table)
    subset_folds: pd.DataFrame | None = None

    def summary(self) -> dict[str, tuple[float, float]]:
        """Mean and standard deviation over folds of each metric."""
        return {m: (float(self.folds[m].mean()), float(self.folds[m].std(ddof=0))) for m in METRICS}


def train_configuration(
    table: pd.DataFrame,
    config: TrainConfig,
    *,
    packed: bool = True,
    on_epoch: Callable[[int, EpochInfo], None] | None = None,
    resume: dict | None = None,
    subsets: Sequence[tuple[str, ...]] = (),
) -> TrainResult:
    """Cross-validate ``config`` on ``table`` (a feature table); see the module docstring.

    ``subsets``: for a model that scores any subset of its modalities (MFN-VAE), also score every fold's
    validation rows with only these modalities given (the others dropped at test time), in
    :attr:`TrainResult.subset_folds`.

    ``on_epoch(epoch, info)`` is called after every epoch with an :class:`~mmt_tune.training.trainer.EpochInfo`;
    ``info.state()`` returns a checkpoint of the packed training state, which ``resume=`` continues from (the folds and preprocessing are recomputed from
    the same seeds; the weights, optimizer moments, noise counters and loss history come from the state).
    """
    if resume is not None and not packed:
        raise ValueError("resume= continues packed training only")
    start = time.perf_counter()
    columns, splits = check_table(table, config)
    fold_data = prepare_folds(table, config, columns, splits)
    if config.baseline:
        from mmt_tune.models.baselines import fit_predict

        groups = [fold_data]
        probabilities = fit_predict(
            config.spec.estimator, config.model_options, fold_data, config.present, config.seed
        )
        outcomes = [(probabilities, pd.DataFrame(columns=["epoch", "fold", "split"]))]
    else:
        layout = Layout.of(fold_data, config, columns)
        groups = [fold_data] if packed else [[fd] for fd in fold_data]
        outcomes = [
            fit_packed(group, config, on_epoch, resume, layout, return_model=bool(subsets))
            for group in groups
        ]
        if subsets:
            subset_folds = _score_subsets(config, groups, [o[2] for o in outcomes], layout, subsets)
            outcomes = [o[:2] for o in outcomes]

    if not subsets or config.baseline:
        subset_folds = None
    result = fold_results(table, config, groups, outcomes)
    result.seconds = time.perf_counter() - start
    result.subset_folds = subset_folds
    return result


def fold_results(
    table: pd.DataFrame, config: TrainConfig, groups: list[list[FoldData]], outcomes: list
) -> TrainResult:
    """A :class:`TrainResult` from each group's folds and its ``(probabilities, history)``."""
    fold_rows, loss_frames, prediction_rows = [], [], []
    for group, (probabilities, history) in zip(groups, outcomes, strict=True):
        loss_frames.append(history)
        temperatures = history.attrs.get("temperature")  # calibrated folds' temperatures, else None
        for i, (fd, prob) in enumerate(zip(group, probabilities, strict=True)):
            fold_rows.append(
                {
                    "fold": fd.fold,
                    "repeat": fd.fold // config.folds,
                    "n_train": len(fd.y_train) - fd.n_synthetic,
                    "n_synthetic": fd.n_synthetic,
                    "n_val": len(fd.y_val),
                    **all_metrics(fd.y_val, prob),
                    **({"temperature": float(temperatures[i])} if temperatures else {}),
                }
            )
            for row, label, p in zip(fd.val_index, fd.y_val, prob, strict=True):
                prediction_rows.append(
                    {
                        "row": int(row),
                        "repeat": fd.fold // config.folds,
                        "fold": fd.fold,
                        "label": int(label),
                        "probability": float(p),
                    }
                )
    predictions = (
        pd.DataFrame(prediction_rows).sort_values(["repeat", "row"], kind="stable").reset_index(drop=True)
    )
    ids = table.iloc[predictions["row"]][[c for c in ("patient_id", "lesion_id") if c in table.columns]]
    predictions = pd.concat([ids.reset_index(drop=True), predictions], axis=1)
    return TrainResult(
        folds=pd.DataFrame(fold_rows).sort_values("fold").reset_index(drop=True),
        losses=pd.concat(loss_frames)
        .sort_values(["epoch", "fold", "split"], kind="stable")
        .reset_index(drop=True),
        predictions=predictions,
        selected={fd.fold: fd.selected for group in groups for fd in group},
    )


def _score_subsets(config: TrainConfig, groups, trained, layout: Layout, subsets) -> pd.DataFrame:
    """Each fold's validation metrics with only a subset of the modalities given to the trained model."""
    import torch

    from mmt_tune.training.tensors import pack

    if not config.spec.subsets:
        raise InputError(f"{config.model} cannot score a subset of its modalities")
    device = resolve_device(config.device)
    rows = []
    for group, model in zip(groups, trained, strict=True):
        for subset in subsets:
            if not subset or not set(subset) <= set(config.present):
                raise InputError(f"subset {'+'.join(subset)}: not a subset of {'+'.join(config.present)}")
            x = {
                m: pack([fd.val[m] for fd in group], device, layout.val_rows, layout.features[m])
                for m in subset
            }
            with torch.no_grad():
                probabilities = torch.softmax(model(x)["logits"], dim=-1)[..., 1].cpu().numpy()
            for i, fd in enumerate(group):
                rows.append(
                    {
                        "subset": "+".join(subset),
                        "fold": fd.fold,
                        "repeat": fd.fold // config.folds,
                        **all_metrics(fd.y_val, probabilities[i, : len(fd.y_val)]),
                    }
                )
    return pd.DataFrame(rows)


def check_table(table: pd.DataFrame, config: TrainConfig) -> tuple[dict[str, list[str]], list]:
    """Everything about ``table`` that would make ``config`` fail, as one :class:`InputError`; returns the
    modality columns and the folds. A study calls it for every configuration before Ray starts."""
    config.validate()
    columns = modality_columns_of(table, config.modalities_used)
    for modality in config.present:
        if table[columns[modality]].isna().all(axis=1).all():
            raise InputError(f"feature table: modality {modality} is NaN in every row")
    return columns, make_repeated_folds(table, config.folds, config.seed, config.repeats)
