"""Fit one configuration on chosen rows and score any rows: the refits that come after a search.

Cross-validation (:mod:`mmt_tune.train`) answers "how good is this configuration"; this module makes the
model itself. :func:`fit_configuration` fits the in-fold pipeline and the model on ``train_index`` rows of a
table (all rows for a final model, an outer fold's training rows for nested CV, the study's table for a
held-out test table appended to it) and returns a :class:`FittedConfiguration`, which scores new rows
(:meth:`FittedConfiguration.predict`) and is what a bundle saves (:mod:`mmt_tune.deploy.bundle`).

``members > 1`` fits an ensemble: member i is trained exactly like cross-validation fold i would be (its own
SMOTE draw, initialisation and noise streams, from the study seed), all members as one packed model;
a prediction is the members' mean probability.

Example::

    config = TrainConfig.from_options("mfnvae", ["T1WI", "FLAIR", "DWI"], {"lr": 1e-4})
    fitted, _ = fit_configuration(table, config, np.arange(len(table)))
    fitted.predict(new_rows, available=("T1WI", "DWI"))  # a patient without FLAIR
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mmt_tune.config import TrainConfig

if TYPE_CHECKING:
    import torch
from mmt_tune.errors import InputError
from mmt_tune.training.preprocess import ModalityTransform, inner_split, modality_columns_of, preprocess_fold


@dataclass
class FittedConfiguration:
    """A configuration fitted on a set of rows: the per-member preprocessing and the model."""

    config: TrainConfig
    transforms: list[dict[str, ModalityTransform]]  # one per member: modality -> fitted transform
    widths: dict[str, int]  # the packed model's input width per modality (selected features, padded)
    state: dict[str, Any] | None = None  # deep models: the packed model's weights (CPU tensors)
    estimators: list[Any] = field(default_factory=list)  # baselines: one fitted classifier per member
    temperature: list[float] | None = None  # deep models with calibration: one per member
    _model: Any = field(default=None, repr=False, compare=False)

    @property
    def members(self) -> int:
        return len(self.transforms)

    @property
    def key(self) -> str:
        return f"{self.config.model}/{'+'.join(self.config.present)}"

    def reads(self, available: Sequence[str] | None = None) -> tuple[str, ...]:
        """The modalities the model reads for a patient with ``available`` modalities (default: all of its
        present ones), or an :class:`InputError` when it cannot score such a patient."""
        present = self.config.present
        if available is None:
            return present
        have = tuple(m for m in present if m in available)
        if self.config.spec.subsets and have:
            return have
        if set(present) <= set(available):
            return present
        lacking = [m for m in present if m not in available]
        raise InputError(f"{self.key} needs {'+'.join(lacking)}")

    def features(self, frame: pd.DataFrame, modalities: Sequence[str]) -> dict[str, list[np.ndarray]]:
        """Each member's transformed features of ``frame``'s rows, per modality."""
        return {m: [t[m].apply(frame) for t in self.transforms] for m in modalities}

    def predict(
        self, frame: pd.DataFrame, available: Sequence[str] | None = None, device: str = "cpu"
    ) -> np.ndarray:
        """P(positive class) of every row of ``frame``: the members' mean. ``available``: the modalities
        these rows have (default: the configuration's present ones); a subset-capable model (MFN-VAE) reads
        only those, any other model needs all of its present modalities."""
        reads = self.reads(available)
        x = self.features(frame, reads)
        if self.config.baseline:
            scores = []
            for i, estimator in enumerate(self.estimators):
                rows = np.concatenate([x[m][i] for m in reads], axis=1)
                scores.append(estimator.predict_proba(rows)[:, list(estimator.classes_).index(1)])
            return np.mean(scores, axis=0)
        import torch

        from mmt_tune.training.tensors import pack

        model = self.model(device)
        with torch.no_grad():
            inputs = {m: pack(x[m], torch.device(device), len(frame), self.widths[m]) for m in reads}
            logits = model(inputs)["logits"]
            if self.temperature is not None:
                logits = (
                    logits
                    / torch.tensor(self.temperature, dtype=logits.dtype, device=logits.device)[:, None, None]
                )
            return torch.softmax(logits, dim=-1)[..., 1].mean(0).cpu().numpy().astype(float)

    def model(self, device: str = "cpu") -> torch.nn.Module:
        """The packed torch model (one slice per member) with the fitted weights, in eval mode."""
        if self._model is None:
            from mmt_tune.training.trainer import build_model

            model = build_model(self.config, self.members, dict(self.widths))
            model.load_state_dict(self.state)
            self._model = model.eval()
        return self._model.to(device)


def fit_configuration(
    table: pd.DataFrame,
    config: TrainConfig,
    train_index: np.ndarray,
    evaluate_index: np.ndarray | None = None,
    members: int = 1,
) -> tuple[FittedConfiguration, np.ndarray]:
    """Fit ``config`` on the ``train_index`` rows of ``table``; return it and its probabilities for the
    ``evaluate_index`` rows (default: the training rows), computed in the same pass as training."""
    if members < 1:
        raise InputError(f"members must be >= 1 (got {members})")
    config.validate()
    train_index = np.asarray(train_index)
    evaluate_index = train_index if evaluate_index is None else np.asarray(evaluate_index)
    columns = modality_columns_of(table.iloc[train_index], config.modalities_used)
    labels = table["label"].to_numpy()[train_index]
    if len(np.unique(labels)) < 2:
        raise InputError(f"{config.model}: the training rows contain only one class")
    fold_data = []
    for member in range(members):
        seed = config.seed * 1000 + member
        train, monitor = train_index, None
        if config.holds_out_monitor:
            train, monitor = inner_split(table, train_index, config.early_stopping_fraction, seed)
        fold_data.append(
            preprocess_fold(
                table,
                columns,
                train,
                evaluate_index,
                config.preprocess,
                random_state=seed,
                fold=member,
                monitor_index=monitor,
            )
        )
    transforms = [fd.transforms for fd in fold_data]
    if config.baseline:
        estimators = []
        for fd in fold_data:
            x = np.concatenate([fd.train[m] for m in config.present], axis=1)
            estimator = config.spec.estimator(config.model_options, config.seed * 1000 + fd.fold)
            estimators.append(estimator.fit(x, fd.y_train))
        widths = {m: len(t[m].columns) for t in transforms[:1] for m in config.present}
        fitted = FittedConfiguration(config, transforms, widths, estimators=estimators)
        return fitted, fitted.predict(table.iloc[evaluate_index])
    from mmt_tune.training.trainer import Layout, fit_packed

    layout = Layout.of(fold_data, config, columns)
    probabilities, history, model = fit_packed(fold_data, config, None, None, layout, return_model=True)
    state = {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}
    temperature = history.attrs.get("temperature")
    fitted = FittedConfiguration(
        config, transforms, dict(layout.features), state=state, temperature=temperature
    )
    return fitted, np.mean(probabilities, axis=0)


def trial_options(row: pd.Series) -> dict:
    """A trials-table row's ``config/`` options as a trial config had them (NaN: another configuration's
    option; integral floats back to int, as Parquet widens an int column holding NaN to float)."""
    from mmt_tune.records import CONFIG_PREFIX

    options = {}
    for column, value in row.items():
        if not str(column).startswith(CONFIG_PREFIX) or value is None:
            continue
        if isinstance(value, float) and np.isnan(value):
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        options[column.removeprefix(CONFIG_PREFIX)] = value.item() if isinstance(value, np.generic) else value
    return options


def best_configurations(
    best: pd.DataFrame,
    modalities: Sequence[str] | None,
    seed: int,
    configurations: Sequence[str] | None = None,
    objective: str = "auc",
) -> list[tuple[TrainConfig, float]]:
    """The rows of :func:`mmt_tune.records.best_trials` as :class:`TrainConfig` objects (with the
    study's modalities and seed) and their mean cross-validated ``objective``."""
    chosen = []
    for _, row in best.iterrows():
        if configurations and f"{row['model']}/{row['present']}" not in configurations:
            continue
        config = TrainConfig.from_options(
            row["model"], row["present"].split("+"), trial_options(row), modalities=modalities, seed=seed
        )
        chosen.append((config, float(row[f"{objective}_mean"])))
    return chosen
