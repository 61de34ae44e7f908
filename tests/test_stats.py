"""Intervals and tests against known values and simulations with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from mmt_tune.stats import (
    bootstrap_interval,
    corrected_t_interval,
    corrected_t_test,
    delong_covariance,
    delong_test,
    holm,
)


def test_holm_matches_the_step_down_rule_worked_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]


def test_corrected_resampled_t_matches_the_formula_worked_by_hand():
    scores = [0.8, 0.7, 0.75, 0.85, 0.9]  # mean 0.8, sample variance 0.00625
    se = np.sqrt((1 / 5 + 0.25) * 0.00625)
    half = 2.7764451051977987 * se  # t(0.975, 4)
    np.testing.assert_allclose(corrected_t_interval(scores, 0.25), (0.8 - half, 0.8 + half), rtol=1e-12)
    # the correction widens the plain t interval by sqrt(1 + J * n_test / n_train)
    plain = sp.t.interval(0.95, 4, loc=0.8, scale=np.sqrt(0.00625 / 5))
    assert half / (plain[1] - 0.8) == pytest.approx(np.sqrt(1 + 5 * 0.25))
    differences = np.array([0.02, 0.05, -0.01, 0.04, 0.03])
    t = differences.mean() / np.sqrt((1 / 5 + 0.25) * differences.var(ddof=1))
    assert corrected_t_test(differences, 0.25) == pytest.approx(2 * sp.t.sf(t, 4))
    assert np.isnan(corrected_t_test([0.1], 0.25)) and np.isnan(corrected_t_interval([0.7], 0.25)[0])


@pytest.mark.parametrize("constant", [0.1, -0.05, 0.0])
def test_a_constant_fold_difference_gets_the_limit_of_the_corrected_t_and_stays_in_holm(constant):
    """Zero variance: t is infinite (p -> 0), or 0/0 for no difference at all (p = 1); both count in Holm.
    The limit is approached by a vanishing spread around the constant."""
    d = np.full(5, constant)
    p = corrected_t_test(d, 0.25)
    near = corrected_t_test(d + np.array([1, -1, 1, -1, 0]) * 1e-9, 0.25)
    assert p == (1.0 if constant == 0 else 0.0)
    if constant:
        assert near < 1e-6
    adjusted = holm([p, 0.01, 0.04])  # three in the family: 0.01 is multiplied by 2 (after p = 0) or 3
    assert adjusted[1] == pytest.approx(0.01 * (3 if constant == 0 else 2))


def test_delong_is_undefined_with_a_single_case_of_a_class():
    y = np.array([1, 0, 0, 0, 0, 0])
    a, b = np.linspace(0.1, 0.9, 6), np.linspace(0.9, 0.1, 6)
    assert np.isnan(delong_test(y, a, b)) and np.isnan(delong_test(1 - y, a, b))
    y[1] = 1  # two of each class at least: defined again
    assert 0.0 <= delong_test(y, a, b) <= 1.0


def _population(n, rng, d=1.0, features=5):
    y = rng.random(n) < 0.4
    x = rng.standard_normal((n, features))
    x[:, :2] += d * y[:, None]
    return x, y.astype(int)


def test_corrected_interval_covers_the_expected_cv_auc_where_the_plain_one_does_not():
    """Simulation with a known answer: the expected AUC of a logistic regression trained on 80 rows of a
    known population (Monte Carlo over fresh training sets, each scored on 20 000 new rows). Repeated 5-fold
    CV on 100-row samples: the corrected 95% interval covers it in most samples; the plain t interval
    over the 10 correlated fold scores far less often."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(0)
    x_big, y_big = _population(20_000, rng)
    truth = np.mean(
        [
            roc_auc_score(y_big, LogisticRegression().fit(*_population(80, rng)).decision_function(x_big))
            for _ in range(60)
        ]
    )
    corrected = plain = 0
    samples = 80
    for _ in range(samples):
        x, y = _population(100, rng)
        scores = []
        for repeat in range(2):
            splitter = StratifiedKFold(5, shuffle=True, random_state=int(rng.integers(1 << 30)) + repeat)
            for train, test in splitter.split(x, y):
                model = LogisticRegression().fit(x[train], y[train])
                scores.append(roc_auc_score(y[test], model.decision_function(x[test])))
        low, high = corrected_t_interval(scores, 0.25)
        corrected += low <= truth <= high
        half = sp.t.ppf(0.975, len(scores) - 1) * np.std(scores, ddof=1) / np.sqrt(len(scores))
        plain += abs(np.mean(scores) - truth) <= half
    assert corrected / samples >= 0.85
    assert plain / samples < corrected / samples - 0.15


def _delong_by_definition(y, scores):
    """DeLong, DeLong and Clarke-Pearson (1988) straight from the definition: O(m n) placement values."""
    y = np.asarray(y)
    out = []
    for s in scores:
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        out.append((psi.mean(), psi.mean(1), psi.mean(0)))
    v10 = np.array([o[1] for o in out])
    v01 = np.array([o[2] for o in out])
    m, n = v10.shape[1], v01.shape[1]
    return np.array([o[0] for o in out]), np.cov(v10) / m + np.cov(v01) / n


def test_delong_matches_the_definition_and_holds_its_size_under_the_null():
    rng = np.random.default_rng(1)
    y = (rng.random(120) < 0.4).astype(int)
    a = y + rng.standard_normal(120)
    b = np.round(y * 0.7 + rng.standard_normal(120), 1)  # ties, as real scores have
    aucs, cov = delong_covariance(y, [a, b])
    expected_aucs, expected_cov = _delong_by_definition(y, [a, b])
    np.testing.assert_allclose(aucs, expected_aucs)
    np.testing.assert_allclose(cov, expected_cov)
    # Under H0 (two scorers with the same signal, independent noise) p < 0.05 about 5% of the time; with a
    # real difference it rejects most of the time.
    null = alternative = 0
    for _ in range(300):
        y = (rng.random(100) < 0.4).astype(int)
        common = y + rng.standard_normal(100)
        null += delong_test(y, common + rng.standard_normal(100), common + rng.standard_normal(100)) < 0.05
        alternative += delong_test(y, 2 * y + rng.standard_normal(100), rng.standard_normal(100)) < 0.05
    assert 0.02 <= null / 300 <= 0.09
    assert alternative / 300 > 0.95


def test_bootstrap_interval_brackets_the_estimate_with_the_width_delong_predicts():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.4).astype(int)
    score = y + rng.standard_normal(200)
    low, high = bootstrap_interval(y, score, roc_auc_score, seed=0)
    estimate = roc_auc_score(y, score)
    assert low < estimate < high
    _, cov = delong_covariance(y, [score])
    assert (high - low) == pytest.approx(2 * 1.96 * np.sqrt(cov[0, 0]), rel=0.2)
    assert bootstrap_interval(y, score, roc_auc_score, seed=0) == (low, high)  # seeded
