"""Spaces as rules over the study's sequences: the paper's spaces on any table of 2-6 sequences."""

from __future__ import annotations

from itertools import combinations

import pytest

from mmt_tune.errors import InputError
from mmt_tune.space_rules import default_subsets, parse_subsets
from mmt_tune.spaces import load_space

# The paper's Table 2 as the shipped files listed it before they became rules, in that order.
PAPER_27 = [
    "mmt2m/T1WI+FLAIR",
    "mmt2m/T1WI+DWI",
    "mmt2m/FLAIR+DWI",
    "mmt1m/T1WI",
    "mmt1m/FLAIR",
    "mmt1m/DWI",
    *(
        f"{model}/{subset}"
        for model in ("mfnvae", "logreg", "forest")
        for subset in ("T1WI", "FLAIR", "DWI", "T1WI+FLAIR", "T1WI+DWI", "FLAIR+DWI", "T1WI+FLAIR+DWI")
    ),
]


@pytest.mark.parametrize("name", ["paper", "paper-wide"])
def test_the_papers_three_sequence_study_keeps_its_exact_27_configurations(name):
    assert [c.key for c in load_space(name).configurations] == PAPER_27
    assert [c.key for c in load_space(name, modalities=["T1WI", "FLAIR", "DWI"]).configurations] == PAPER_27


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_paper_wide_runs_on_any_table_of_two_to_six_sequences(n):
    sequences = [f"S{i}" for i in range(n)]
    space = load_space("paper-wide", modalities=sequences)
    found = {(c.model, frozenset(c.present)) for c in space.configurations}
    assert len(found) == len(space.configurations)
    # MMT on exactly the sets missing one or two sequences, under the model whose name fits the count
    mmt = {p for m, p in found if m.startswith("mmt")}
    assert mmt == {frozenset(s) for k in (1, 2) if n - k >= 1 for s in combinations(sequences, n - k)}
    for model, present in found:
        if model.startswith("mmt"):
            assert model == {2: "mmt2m", 1: "mmt1m"}.get(len(present), "mmt")
    # MFN-VAE and both baselines on every subset up to the cap, and on all of them
    cap = default_subsets(n) or n
    subsets = {
        frozenset(s) for k in range(1, n + 1) if k <= cap or k == n for s in combinations(sequences, k)
    }
    for model in ("mfnvae", "logreg", "forest"):
        assert {p for m, p in found if m == model} == subsets
    # every configuration names its sequences in the study's order
    for configuration in space.configurations:
        assert list(configuration.present) == [s for s in sequences if s in configuration.present]


def test_the_subsets_cap_is_a_choice_and_all_means_every_subset():
    sequences = list("ABCDEF")
    assert len(load_space("paper-wide", modalities=sequences, subsets=None).configurations) == 21 + 3 * 22
    assert len(load_space("paper-wide", modalities=sequences, subsets=6).configurations) == 21 + 3 * 63
    ones = load_space("paper-wide", modalities=sequences, subsets=1)
    assert {len(c.present) for c in ones.configurations if c.model == "forest"} == {1, 6}
    (note,) = [n for n in load_space("paper-wide", modalities=sequences).notes if "--subsets" in n]
    assert "at most 2 sequences and all 6" in note
    assert parse_subsets("all") is None and parse_subsets("3") == 3
    for bad in ("0", "x", "-1"):
        with pytest.raises(InputError, match="--subsets"):
            parse_subsets(bad)


def test_the_order_of_the_tables_columns_changes_no_configuration():
    forward = load_space("paper-wide", modalities=["T1Gd", "T1", "T2", "FLAIR"])
    backward = load_space("paper-wide", modalities=["FLAIR", "T2", "T1", "T1Gd"])

    def content(space):
        return {(c.model, frozenset(c.present), tuple(sorted(c.parameters))) for c in space.configurations}

    assert content(forward) == content(backward)
    assert forward.configuration("mmt2m/T2+T1").key == "mmt2m/T1+T2"
    assert backward.configuration("mmt2m/T1+T2").key == "mmt2m/T2+T1"


def test_parameters_that_apply_to_none_are_ignored_with_one_note_listing_all(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "configurations:\n  - {model: mfnvae, present: every}\n"
        "parameters:\n  lr: {distribution: loguniform, low: 1.0e-5, high: 1.0e-3}\n"
        "  gamma: {distribution: uniform, low: 0.1, high: 1}\n"
        "  max_depth: {distribution: int, low: 2, high: 8}\n"
        "fixed:\n  epochs: 5\n  n_estimators: 10\n"
    )
    space = load_space(path, modalities=["T1", "T2"])
    (note,) = space.notes
    assert (
        note
        == f"{path}: parameters.gamma, parameters.max_depth, fixed.n_estimators: apply to none of the configurations: ignored"
    )
    assert [c.key for c in space.configurations] == ["mfnvae/T1", "mfnvae/T2", "mfnvae/T1+T2"]
    assert all(set(c.parameters) == {"lr"} for c in space.configurations)
    assert all(c.fixed == {"epochs": 5} for c in space.configurations)


def test_an_explicit_entry_wins_over_a_rules_copy_and_a_rule_giving_nothing_is_noted(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "configurations:\n  - {model: forest, present: [T2]}\n  - {model: forest, present: every}\n"
        "  - {model: mmt2m, present: every}\n"
        "parameters:\n  max_depth: {distribution: int, low: 2, high: 8}\n"
    )
    space = load_space(path, modalities=["T1", "T2"])
    assert [c.key for c in space.configurations] == ["forest/T2", "forest/T1", "forest/T1+T2"]
    assert any(
        "configurations[2] (mmt2m, present: every) gives no configuration on 2 sequences" in n
        for n in space.notes
    )


def test_a_space_of_rules_takes_the_tables_sequences_in_a_study():
    from mmt_tune.study.guards import study_space

    space = study_space("paper-wide", ("T2", "T1"), "table.parquet")
    assert space.modalities == ("T2", "T1")
    assert [c.key for c in space.configurations][:2] == ["mmt1m/T2", "mmt1m/T1"]
    assert study_space("paper-wide", ("T1WI", "FLAIR", "DWI"), "t").modalities == ("T1WI", "FLAIR", "DWI")
