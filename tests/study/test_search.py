"""Pack sizes that never cost parallelism: every slot the study holds stays busy."""

from __future__ import annotations

import pytest

from mmt_tune.study.search import SLACK, PerConfigurationSearch, fitted_pack, makespan


def test_the_makespan_of_packs_on_slots_is_counted_in_trial_times():
    assert makespan([8], 1, 2) == 4  # 8 single trials, two at a time
    assert makespan([8], 8, 2) == 8  # one pack of 8 on one slot: the other idles
    assert makespan([8], 4, 2) == 4
    assert makespan([5, 5], 3, 2) == 5  # packs of 3 and 2 per configuration, one configuration per slot
    assert makespan([9], 4, 1) == 9  # one slot: packs change nothing


@pytest.mark.parametrize(
    "requested, budgets, slots, expected",
    [
        (8, [8], 2, 4),  # the measured case: one configuration, 8 trials, 2 CPUs
        (8, [8], 1, 8),  # one slot: the whole pack
        (8, [8] * 6, 2, 8),  # enough packs to fill both slots
        (4, [4], 2, 2),
        (4, [50] * 13, 2, 4),  # the paper space's deep configurations, 50 trials each
        (1, [8], 2, 1),
    ],
)
def test_a_pack_is_as_large_as_asked_only_where_no_slot_would_idle(requested, budgets, slots, expected):
    size = fitted_pack(requested, budgets, slots)
    assert size == expected
    # never later than single trials (within the slack the packing gain pays for), and the next size up
    # (where one was asked for) would be
    assert makespan(budgets, size, slots) <= SLACK * makespan(budgets, 1, slots)
    if size < requested:
        assert makespan(budgets, size + 1, slots) > SLACK * makespan(budgets, 1, slots)


def test_the_searcher_hands_out_fitted_packs_and_baselines_alone():
    from mmt_tune.spaces import load_space

    space = load_space("mmt1m")
    one = type(space)(space.name, "", space.source, space.configurations[:1], space.modalities)
    searcher = PerConfigurationSearch(one, samples_per_configuration=8, seed=0, pack=8, slots=2)
    assert searcher.pack == {"mmt1m/T1WI": 4} and searcher.total_trials == 2
    sizes = [len(searcher.suggest(f"t{i}")["pack"]) for i in range(2)]
    assert sizes == [4, 4] and searcher.suggest("t2") == PerConfigurationSearch.FINISHED
    alone = PerConfigurationSearch(one, samples_per_configuration=8, seed=0, pack=8)
    assert alone.pack == {"mmt1m/T1WI": 8}  # no slots known (a direct caller): as asked


def test_the_study_estimate_extrapolates_the_rate_so_far():
    from mmt_tune.study.callbacks import estimate_line

    line = estimate_line(ended=4, remaining=20, seconds=120.0)
    assert line.startswith("estimate: about 10 min more for the other 20 trials (the first 4 took 2 min;")
    assert "2.0 h" in estimate_line(ended=2, remaining=120, seconds=120.0)  # 120 x 60 s = 7200 s
    assert estimate_line(ended=4, remaining=0, seconds=10.0) == ""
