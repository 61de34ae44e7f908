import math

import numpy as np
import pytest

from mmt_tune import metrics


def test_metrics_on_a_hand_built_confusion_matrix():
    # 3 TP, 1 FN, 4 TN, 2 FP at threshold 0.5
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.6, 0.2, 0.1, 0.3, 0.4, 0.45, 0.7, 0.55])
    m = metrics.all_metrics(y, p)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    # AUC: correctly ranked positive/negative pairs: 0.9 and 0.8 beat all 6; 0.6 beats 5; 0.2 beats 1 -> 18/24
    assert m["auc"] == pytest.approx(18 / 24)


def test_undefined_ratios_are_nan_not_zero():
    assert math.isnan(metrics.precision([1, 0], [0.1, 0.2]))
    assert math.isnan(metrics.auc([1, 1], [0.1, 0.9]))
    assert metrics.specificity([1, 0], [0.9, 0.1]) == 1.0


def test_the_auc_equals_scikit_learn_s_with_and_without_ties():
    from sklearn.metrics import roc_auc_score

    from mmt_tune.metrics import auc

    rng = np.random.default_rng(0)
    for i in range(500):
        n = int(rng.integers(2, 200))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = rng.random(n) if i % 2 else np.round(rng.random(n), 1)  # rounded: many ties
        assert (
            abs(auc(y, s) - roc_auc_score(y, s)) <= 1e-15
        )  # a bit or two: one rounding here, a trapezoid sum there
