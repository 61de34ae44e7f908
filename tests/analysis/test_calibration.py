"""Calibration scores and decision curves against their definitions and independent implementations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmt_tune.analysis.calibration import (
    calibration_line,
    decision_curve,
    fold_scores,
    log_loss,
    logit,
    net_benefit,
    reliability,
)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module")
def calibrated():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 40_000)
    return p, (rng.random(p.size) < p).astype(int)


def test_a_calibrated_model_has_slope_one_and_intercept_zero(calibrated):
    p, y = calibrated
    intercept, slope = calibration_line(y, p)
    assert abs(slope - 1) < 0.05 and abs(intercept) < 0.05


def test_overconfident_and_shifted_probabilities_are_seen_as_such(calibrated):
    p, y = calibrated
    _, slope = calibration_line(y, _sigmoid(2 * logit(p)))  # too extreme: slope 1/2
    assert abs(slope - 0.5) < 0.03
    intercept, slope = calibration_line(y, _sigmoid(logit(p) + 1))  # too high: intercept -1
    assert abs(intercept + 1) < 0.05 and abs(slope - 1) < 0.05


def test_the_slope_is_scikit_learns_unpenalised_logistic_regression_and_the_intercept_solves_its_score():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 300)
    y = (rng.random(300) < _sigmoid(0.7 * logit(p) - 0.3)).astype(int)
    intercept, slope = calibration_line(y, p)
    fitted = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit(p)[:, None], y)
    assert slope == pytest.approx(fitted.coef_[0, 0], abs=1e-6)
    # calibration-in-the-large: with logit(p) as offset, the intercept makes the expected and observed
    # number of positives equal
    assert np.sum(y - _sigmoid(intercept + logit(p))) == pytest.approx(0, abs=1e-8)


def test_brier_and_log_loss_equal_scikit_learn():
    from sklearn.metrics import brier_score_loss
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 200)
    y = rng.integers(0, 2, 200)
    scores = fold_scores(y, p, prevalence=0.4)
    assert scores["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-15)
    assert scores["log_loss"] == pytest.approx(sk_log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)), abs=1e-12)
    assert scores["brier_prevalence"] == pytest.approx(np.mean((0.4 - y) ** 2))
    assert scores["log_loss_prevalence"] == pytest.approx(log_loss(y, np.full(200, 0.4)))


def test_one_class_and_separated_folds_have_no_calibration_line():
    assert np.isnan(calibration_line(np.ones(10), np.linspace(0.1, 0.9, 10))).all()
    y = np.array([0] * 10 + [1] * 10)
    p = np.r_[np.linspace(0.1, 0.4, 10), np.linspace(0.6, 0.9, 10)]  # logit(p) separates the labels
    assert np.isnan(calibration_line(y, p)[1])


def test_net_benefit_by_hand_and_the_treat_all_line():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.3, 0.6, 0.2, 0.1])
    nb = net_benefit(y, p, np.array([0.25, 0.5]))
    # t = 0.25: treat 0.9, 0.3, 0.6 -> TP 2, FP 1: 2/5 - 1/5 * 1/3; t = 0.5: treat 0.9, 0.6 -> 1/5 - 1/5
    assert nb == pytest.approx([2 / 5 - 1 / 15, 0.0])
    curve = decision_curve(pd.DataFrame({"fold": 0, "label": y, "probability": p}), np.array([0.25]))
    assert curve["treat_all"].iloc[0] == pytest.approx(2 / 5 - 3 / 5 * 1 / 3)
    assert curve["treat_none"].iloc[0] == 0


def test_the_reliability_curve_of_one_fold_is_plain_binning():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 500)
    y = (rng.random(500) < p).astype(int)
    curve = reliability(pd.DataFrame({"fold": 0, "label": y, "probability": p}))
    bins = np.minimum((p * 10).astype(int), 9)
    for _, row in curve.iterrows():
        inside = bins == row["bin"]
        assert row["predicted"] == pytest.approx(p[inside].mean())
        assert row["observed"] == pytest.approx(y[inside].mean())
        assert row["n"] == inside.sum()


def test_the_prevalence_reference_is_the_whole_tables_with_or_without_a_repeat_column():
    from mmt_tune.analysis.calibration import calibration_folds

    labels = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])  # fold 0 has 3 of 5 positive, fold 1 has 1 of 5
    oof = pd.DataFrame(
        {
            "model": "m",
            "present": "A",
            "trial_id": "t",
            "fold": [0] * 5 + [1] * 5,
            "row": range(10),
            "label": labels,
            "probability": np.linspace(0.1, 0.9, 10),
        }
    )
    best = pd.DataFrame({"model": ["m"], "present": ["A"], "trial_id": ["t"]})
    for frame in (oof, oof.assign(repeat=0)):  # outer (nested) predictions carry no repeat column
        folds = calibration_folds(best, frame)
        expected = [np.mean((0.4 - labels[:5]) ** 2), np.mean((0.4 - labels[5:]) ** 2)]
        np.testing.assert_allclose(folds["brier_prevalence"], expected)
