"""In-fold preprocessing (docs/study-protocol.md): everything data-dependent is fitted on training rows only.

Per modality (a scikit-learn ``ColumnTransformer`` branch, so modalities never mix before the model):
median imputation -> constant-feature filter -> standard scaling -> correlation filter -> top-k selection
(univariate ANOVA F, mutual information, or a model-based extra-trees importance). Then Borderline-SMOTE on
the concatenated features, inside an imbalanced-learn ``Pipeline``, which resamples in ``fit_resample`` and
passes validation rows through ``transform`` untouched by the sampler.

Folds: stratified k-fold fixed by the study seed; lesion-level tables use stratified *group* k-fold on the
patient, so no patient is in two folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin

from mmt_tune.config import PreprocessConfig
from mmt_tune.errors import InputError
from mmt_tune.modalities import COLUMN_SEPARATOR

if TYPE_CHECKING:
    from imblearn.pipeline import Pipeline
    from sklearn.pipeline import Pipeline as SkPipeline

SCORES = ("anova", "mutual_info", "forest")


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop every feature whose absolute Pearson correlation with an earlier kept feature exceeds ``threshold``.

    Greedy in column order, as radiomics pipelines usually do; constant columns (undefined correlation) are
    kept here and left to the variance filter.
    """

    def __init__(self, threshold: float = 0.95):
        self.threshold = threshold

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> CorrelationFilter:
        X = np.asarray(X, dtype=float)
        self.n_features_in_ = X.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.corrcoef(X, rowvar=False)) if X.shape[1] > 1 else np.ones((1, 1))
        corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
        keep = np.zeros(X.shape[1], dtype=bool)
        for j in range(X.shape[1]):
            keep[j] = not np.any(corr[j, keep] > self.threshold)
        self.support_ = keep
        return self

    def _get_support_mask(self):
        return self.support_


class TopK(SelectorMixin, BaseEstimator):
    """Keep the ``k`` best features by ``score`` (all of them when fewer than ``k`` remain)."""

    def __init__(self, k: int = 32, score: str = "anova", random_state: int | None = None):
        self.k = k
        self.score = score
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> TopK:
        from sklearn.ensemble import ExtraTreesClassifier
        from sklearn.feature_selection import f_classif, mutual_info_classif

        X = np.asarray(X, dtype=float)
        self.n_features_in_ = X.shape[1]
        if self.score not in SCORES:
            raise ValueError(f"unknown selection score {self.score!r} (known: {', '.join(SCORES)})")
        if self.score == "anova":
            with np.errstate(invalid="ignore", divide="ignore"):
                scores = f_classif(X, y)[0]
        elif self.score == "mutual_info":
            scores = mutual_info_classif(X, y, random_state=self.random_state)
        else:
            forest = ExtraTreesClassifier(n_estimators=200, random_state=self.random_state, n_jobs=1)
            scores = forest.fit(X, y).feature_importances_
        scores = np.nan_to_num(scores, nan=-np.inf)
        order = np.argsort(-scores, kind="stable")[: min(self.k, X.shape[1])]
        self.support_ = np.zeros(X.shape[1], dtype=bool)
        self.support_[order] = True
        self.scores_ = scores
        return self

    def _get_support_mask(self):
        return self.support_


#: Borderline-SMOTE's neighbours for deciding which minority rows are "in danger" (imbalanced-learn's default).
DANGER_NEIGHBOURS = 10


def smote_neighbours(y_train: np.ndarray, wanted: int) -> int:
    """The SMOTE neighbours a fold allows: at most its minority-class rows minus one (0: no SMOTE)."""
    return min(int(wanted), int(np.bincount(np.asarray(y_train, dtype=int), minlength=2).min()) - 1)


def build_pipeline(
    modality_columns: dict[str, list[str]],
    config: PreprocessConfig,
    random_state: int,
    n_rows: int | None = None,
) -> Pipeline:
    """The imbalanced-learn pipeline of one fold: per-modality branches, then Borderline-SMOTE.

    ``n_rows`` (the fold's training rows) bounds the danger-zone neighbours of small folds, which
    imbalanced-learn would otherwise reject.
    """
    from imblearn.over_sampling import BorderlineSMOTE
    from imblearn.pipeline import Pipeline
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline as SkPipeline
    from sklearn.preprocessing import StandardScaler

    branches = []
    for modality, columns in modality_columns.items():
        branch = SkPipeline(
            [
                # keep_empty_features: a column that is NaN in every training row stays (as 0) so column
                # positions are stable; the variance filter then removes it.
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("variance", VarianceThreshold(0.0)),
                ("scale", StandardScaler()),
                ("correlation", CorrelationFilter(config.correlation_threshold)),
                ("top_k", TopK(config.k_for(modality), config.score, random_state)),
            ]
        )
        branches.append((modality, branch, columns))
    features = ColumnTransformer(branches, remainder="drop", verbose_feature_names_out=False)
    steps = [("features", features)]
    if config.smote:
        steps.append(
            (
                "smote",
                BorderlineSMOTE(
                    k_neighbors=config.smote_neighbors,
                    m_neighbors=min(DANGER_NEIGHBOURS, (n_rows or DANGER_NEIGHBOURS + 1) - 1),
                    random_state=random_state,
                ),
            )
        )
    return Pipeline(steps)


@dataclass
class FoldData:
    """One fold after preprocessing: per-modality arrays (training rows resampled, validation rows not)."""

    fold: int
    train: dict[str, np.ndarray]  # modality -> (n_train_resampled, k_m)
    y_train: np.ndarray
    val: dict[str, np.ndarray]  # modality -> (n_val, k_m)
    y_val: np.ndarray
    val_index: np.ndarray  # positions of the validation rows in the feature table
    n_synthetic: int
    selected: dict[str, list[str]]  # modality -> selected feature columns
    # Early-stopping rows: held out of the fold's training rows (never resampled, never fitted on).
    monitor: dict[str, np.ndarray] | None = None
    y_monitor: np.ndarray | None = None
    # The fitted per-modality transform as plain arrays (what a saved bundle applies to new rows).
    transforms: dict[str, ModalityTransform] | None = None


@dataclass
class ModalityTransform:
    """A fitted modality branch reduced to what it does to the features it keeps: fill a missing value with
    the training median, then standardise. Plain arrays (no estimator object), so a bundle stores it without
    pickle; :meth:`apply` gives the same numbers as the fitted branch's ``transform``."""

    columns: list[str]  # the selected feature columns, in the model's order
    median: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, branch: SkPipeline, columns: Sequence[str]) -> ModalityTransform:
        """From a fitted branch of :func:`build_pipeline` over ``columns``."""
        steps = branch.named_steps
        kept = np.flatnonzero(steps["variance"].get_support())  # positions after the variance filter
        chosen = np.flatnonzero(steps["correlation"].get_support())[steps["top_k"].get_support()]
        original = kept[chosen]
        return cls(
            columns=[columns[i] for i in original],
            median=np.asarray(steps["impute"].statistics_, dtype=float)[original],
            mean=np.asarray(steps["scale"].mean_, dtype=float)[chosen],
            scale=np.asarray(steps["scale"].scale_, dtype=float)[chosen],
        )

    def apply(self, frame: pd.DataFrame) -> np.ndarray:
        """``[rows, kept features]`` float32 for the rows of ``frame`` (which must have :attr:`columns`)."""
        values = frame[self.columns].to_numpy(dtype=float)
        values = np.where(np.isnan(values), self.median[None, :], values)
        return np.asarray((values - self.mean) / self.scale, dtype=np.float32)


def preprocess_fold(
    table: pd.DataFrame,
    modality_columns: dict[str, list[str]],
    train_index: np.ndarray,
    val_index: np.ndarray,
    config: PreprocessConfig,
    random_state: int,
    fold: int = 0,
    monitor_index: np.ndarray | None = None,
) -> FoldData:
    """Fit the fold's pipeline on ``train_index`` rows only and transform both parts.

    ``monitor_index`` (rows disjoint from both) is transformed like the validation rows: the early-stopping
    rows, split off the fold's training rows by :func:`inner_split`.
    """
    columns = [c for cols in modality_columns.values() for c in cols]
    X_train = table.iloc[train_index][columns]
    y_train = table["label"].to_numpy()[train_index]
    X_val = table.iloc[val_index][columns]
    y_val = table["label"].to_numpy()[val_index]

    neighbours = smote_neighbours(y_train, config.smote_neighbors)
    effective = PreprocessConfig(
        **{
            **config.__dict__,
            "smote": config.smote and neighbours >= 1,
            "smote_neighbors": max(neighbours, 1),
        }
    )
    pipeline = build_pipeline(modality_columns, effective, random_state, n_rows=len(y_train))
    if effective.smote:
        Z_train, y_res = pipeline.fit_resample(X_train, y_train)
    else:
        Z_train, y_res = pipeline.fit(X_train, y_train).transform(X_train), y_train
    # Validation rows only go through the fitted per-modality branches; the sampler never sees them.
    features = pipeline.named_steps["features"]
    Z_val = features.transform(X_val)
    Z_monitor = None if monitor_index is None else features.transform(table.iloc[monitor_index][columns])
    train, val, monitor, selected, transforms = {}, {}, {}, {}, {}
    for modality in modality_columns:
        block = features.output_indices_[modality]
        train[modality] = np.asarray(Z_train[:, block], dtype=np.float32)
        val[modality] = np.asarray(Z_val[:, block], dtype=np.float32)
        if Z_monitor is not None:
            monitor[modality] = np.asarray(Z_monitor[:, block], dtype=np.float32)
        branch = features.named_transformers_[modality]
        names = np.asarray(modality_columns[modality])
        for step in ("variance", "correlation", "top_k"):
            names = names[branch.named_steps[step].get_support()]
        selected[modality] = list(names)
        transforms[modality] = ModalityTransform.of(branch, modality_columns[modality])
    return FoldData(
        fold,
        train,
        np.asarray(y_res),
        val,
        y_val,
        np.asarray(val_index),
        len(y_res) - len(y_train),
        selected,
        monitor=monitor if Z_monitor is not None else None,
        y_monitor=None if monitor_index is None else table["label"].to_numpy()[monitor_index],
        transforms=transforms,
    )


def inner_split(
    table: pd.DataFrame, train_index: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training rows into (fit rows, early-stopping rows): stratified, by patient, seeded.

    About ``fraction`` of the rows (``round(1 / fraction)`` stratified group folds, the first one held out),
    so early stopping never looks at the fold's validation rows.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, round(1.0 / fraction))
    y = table["label"].to_numpy()[train_index]
    groups = table["patient_id"].to_numpy()[train_index]
    if np.bincount(y.astype(int), minlength=2).min() < n_splits:
        raise InputError(
            f"early stopping: a fold's training rows have too few of one class to hold out "
            f"{fraction:.0%} stratified (early_stopping_fraction)"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fit_rows, monitor_rows = next(splitter.split(np.zeros(len(y)), y, groups=groups))
    return np.asarray(train_index)[fit_rows], np.asarray(train_index)[monitor_rows]


def repeat_seed(seed: int, repeat: int) -> int:
    """The split seed of repeat ``repeat`` of a repeated CV (repeat 0 is the study seed itself)."""
    return seed + 1_000_003 * repeat


def make_repeated_folds(
    table: pd.DataFrame, n_folds: int, seed: int, repeats: int = 1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``repeats`` x ``n_folds`` splits, repeat by repeat: split ``r * n_folds + i`` is fold i of repeat r."""
    return [split for r in range(repeats) for split in make_folds(table, n_folds, repeat_seed(seed, r))]


def make_folds(table: pd.DataFrame, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds fixed by ``seed``; grouped by patient when the table has several rows per patient."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = table["label"].to_numpy()
    counts = np.bincount(y.astype(int), minlength=2)
    if counts.min() < n_folds:
        raise InputError(
            f"cannot make {n_folds} stratified folds: the table has {counts[1]} SCLC and {counts[0]} NSCLC rows"
        )
    grouped = table["patient_id"].duplicated().any()
    if grouped:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y, groups=table["patient_id"].to_numpy())
    else:
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    folds = [(np.asarray(train), np.asarray(val)) for train, val in splits]
    for number, (train, val) in enumerate(folds):
        for part, index in (("training", train), ("validation", val)):
            if len(np.unique(y[index])) < 2:
                raise InputError(f"fold {number}: its {part} rows contain only one class; use fewer folds")
    return folds


def modality_columns_of(table: pd.DataFrame, modalities: Sequence[str]) -> dict[str, list[str]]:
    """Feature columns per modality, with a clear error for a modality the table lacks or has only NaN for."""
    result = {}
    for modality in modalities:
        columns = [c for c in table.columns if c.startswith(f"{modality}{COLUMN_SEPARATOR}")]
        if not columns:
            raise InputError(f"feature table has no columns for modality {modality} ({modality}__<feature>)")
        if table[columns].isna().all().all():
            raise InputError(f"feature table: modality {modality} is NaN in every row")
        result[modality] = columns
    return result
