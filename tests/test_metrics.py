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
