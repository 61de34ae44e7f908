"""Classical baselines beside the deep models: a penalised logistic regression and a random forest.

A deep model belongs in a paper only if it beats these on the same folds. They run on the
*present* modalities' features after the same in-fold preprocessing as the deep models (median imputation,
scaling, correlation filter, top-k per modality, Borderline-SMOTE on the training rows), so the comparison
isolates the model. Each fold's estimator is seeded from the study seed and the fold.

Options (search-space and config-file names):

- ``logreg``: ``C`` (inverse regularisation strength, 0.1), ``l1_ratio`` (0 = L2; 0 < r <= 1 elastic net,
  fitted with the saga solver);
- ``forest``: ``n_estimators`` (300), ``max_depth`` (None: grow fully), ``min_samples_leaf`` (1),
  ``max_features`` (``sqrt``, or a fraction of the features).

Example::

    config = TrainConfig.from_options("logreg", ["T1WI", "DWI"], {"C": 0.05})
    result = train_configuration(table, config)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin


def logistic_regression(params: Mapping, random_state: int) -> ClassifierMixin:
    """A fresh penalised logistic regression for one fold; ``params`` holds every option (the registry
    merges the defaults, chosen by the sweep in benchmarks/RESULTS.md, under the configured ones)."""
    from sklearn.linear_model import LogisticRegression

    l1_ratio = float(params["l1_ratio"])
    return LogisticRegression(
        C=float(params["C"]),
        l1_ratio=l1_ratio,
        solver="saga" if l1_ratio > 0 else "lbfgs",
        max_iter=5000,
        random_state=random_state,
    )


def random_forest(params: Mapping, random_state: int) -> ClassifierMixin:
    """A fresh random forest for one fold (single-threaded: trials are the unit of parallelism)."""
    from sklearn.ensemble import RandomForestClassifier

    depth = params["max_depth"]
    return RandomForestClassifier(
        n_estimators=int(params["n_estimators"]),
        max_depth=None if depth in (None, 0) else int(depth),
        min_samples_leaf=int(params["min_samples_leaf"]),
        max_features=params["max_features"],
        random_state=random_state,
        n_jobs=1,
    )


def check_options(options: Mapping) -> None:
    """Raise ``ValueError`` naming the option for a value the estimator would reject."""
    for key, value in options.items():
        if key == "C" and not float(value) > 0:
            raise ValueError(f"C must be positive, got {value}")
        if key == "l1_ratio" and not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {value}")
        if key in ("n_estimators", "min_samples_leaf") and int(value) < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
        if key == "max_depth" and value is not None and int(value) < 0:
            raise ValueError(f"max_depth must be >= 0 (0 or null: unlimited), got {value}")
        if key == "max_features" and not (
            value in ("sqrt", "log2") or (isinstance(value, float) and 0.0 < value <= 1.0)
        ):
            raise ValueError(f"max_features must be sqrt, log2 or a fraction in (0, 1], got {value!r}")


def fit_predict(
    estimator: Callable,
    options: Mapping,
    folds: Sequence,
    present: Sequence[str],
    seed: int,
) -> list[np.ndarray]:
    """Fit ``estimator(options, random_state)`` per fold on its (resampled) training rows; the validation
    rows' P(label 1)."""
    probabilities = []
    for fd in folds:
        x_train = np.concatenate([fd.train[m] for m in present], axis=1)
        x_val = np.concatenate([fd.val[m] for m in present], axis=1)
        fitted = estimator(options, seed * 1000 + fd.fold).fit(x_train, fd.y_train)
        positive = list(fitted.classes_).index(1)
        probabilities.append(fitted.predict_proba(x_val)[:, positive])
    return probabilities
