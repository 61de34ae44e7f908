"""analysis.importance: fANOVA against a known variance decomposition, the Table 3 layout, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmt_tune.analysis.importance.cli import main
from mmt_tune.analysis.importance.study import importance
from mmt_tune.analysis.importance.table import table3, write_importance
from mmt_tune.analysis.importance.types import ImportanceOptions
from mmt_tune.analysis.results import Study, load_study
from mmt_tune.analysis.synthetic import analytic_importance, synthetic_trials
from mmt_tune.errors import InputError
from mmt_tune.spaces import Distribution

# The paper's ranges for one MMT-2M configuration: lr log-uniform, loss weights uniform.
PAPER_MMT2M = {
    "lr": Distribution("loguniform", 1e-6, 1e-5),
    "alpha_DWI": Distribution("uniform", 0.1, 1.0),
    "beta": Distribution("uniform", 0.1, 1.0),
}
KEY = "mmt2m/T1WI+FLAIR"


def study_of(trials: pd.DataFrame, space: dict | None) -> Study:
    return Study(source="test", trials=trials, space=space or {})


def write_space(folder, space: dict) -> None:
    spec = {key: {name: b.to_json() for name, b in parameters.items()} for key, parameters in space.items()}
    (folder / "space.json").write_text(json.dumps({"study": "t", "configurations": spec}))


# Tolerance of the validation tests, in absolute fraction of variance: 0.05.
# Why: fANOVA decomposes a random forest's piecewise-constant fit, not the function itself. With 600 noise-free
# trials in 3 dimensions a tree resolves each axis into only a few effective cells, which blurs a linear main
# effect and leaks part of its variance into spurious interactions, so main effects come out biased low;
# bootstrapping adds seed-to-seed scatter. Measured at 600 trials on three synthetic tables (data seeds 1-3,
# forest seeds 0-2) the worst main-effect error was 0.038 (fanova) and 0.031 (Optuna); 0.05 leaves headroom
# for that spread while a scale error (lr treated as linear, below) is caught.
TOLERANCE = 0.05


@pytest.mark.parametrize("engine,seeds", [("fanova", 3), ("optuna", 2)])
def test_main_effects_match_the_analytic_decomposition(engine, seeds):
    trials = synthetic_trials({KEY: PAPER_MMT2M}, 600, seed=1)
    result = importance(
        study_of(trials, {KEY: PAPER_MMT2M}),
        ImportanceOptions(engine=engine, seeds=seeds, jobs=1),
        progress=False,
    )
    (configuration,) = result.configurations
    expected, pure_interaction = analytic_importance(list(PAPER_MMT2M))
    assert expected["beta"] > expected["alpha_DWI"] > expected["lr"]  # the fixture is not degenerate
    for name, value in expected.items():
        mean, std = configuration.main[name]
        assert abs(mean - value) < TOLERANCE, (engine, name, mean, value)
        assert 0 <= std < 0.05
    if engine == "fanova":
        # The planted beta x lr interaction is the strongest pair, close to its analytic share.
        (first, second), (mean, _) = max(configuration.pairs.items(), key=lambda kv: kv[1][0])
        assert {first, second} == {"beta", "lr"}
        assert abs(mean - pure_interaction) < TOLERANCE
        x, curve, _ = configuration.marginals["beta"]
        assert np.corrcoef(x, curve)[0, 1] > 0.95  # the main-effect curve of beta rises linearly


def test_a_log_scaled_parameter_analysed_on_a_linear_scale_misses_the_tolerance():
    """The check above can fail: declare lr uniform (linear) and its importance leaves the tolerance."""
    trials = synthetic_trials({KEY: PAPER_MMT2M}, 600, seed=1)
    linear = {**PAPER_MMT2M, "lr": Distribution("uniform", 1e-6, 1e-5)}
    result = importance(study_of(trials, {KEY: linear}), ImportanceOptions(seeds=1, jobs=1), progress=False)
    expected, _ = analytic_importance(list(PAPER_MMT2M))
    assert abs(result.configurations[0].main["lr"][0] - expected["lr"]) > TOLERANCE


def test_table3_layout_and_outputs(tmp_path):
    space = {
        KEY: PAPER_MMT2M,
        "mmt1m/DWI": {
            "lr": PAPER_MMT2M["lr"],
            "alpha_T1WI": PAPER_MMT2M["beta"],
            "alpha_FLAIR": PAPER_MMT2M["beta"],
            "beta": PAPER_MMT2M["beta"],
            "gamma": PAPER_MMT2M["beta"],
        },
    }
    trials = synthetic_trials(space, 60, seed=2)
    folder = tmp_path / "study"
    folder.mkdir()
    trials.to_csv(folder / "trials.csv", index=False)
    write_space(folder, space)
    assert main([str(folder), "--seeds", "2", "--jobs", "1"]) == 0
    out = folder / "analysis"
    frame = pd.read_csv(out / "importance.csv")
    # one row per model x configuration x hyperparameter, with mean and std
    assert len(frame) == 3 + 5 and frame[["model", "present", "hyperparameter"]].duplicated().sum() == 0
    assert {"mean", "std", "n_trials", "engine", "note"} <= set(frame.columns)
    assert (frame["n_trials"] == 60).all() and frame["mean"].between(0, 1).all()
    table = pd.read_csv(out / "table3.csv", keep_default_na=False)
    assert list(table.columns[:8]) == [
        "Model",
        "T1WI",
        "FLAIR",
        "DWI",
        "Classification β",
        "Reconstruction T1WI α",
        "Reconstruction FLAIR α",
        "Reconstruction DWI α",
    ]
    assert list(table["Model"]) == ["MMT-2M", "MMT-1M", "Average"]
    assert table.iloc[0][["T1WI", "FLAIR", "DWI"]].tolist() == ["✓", "✓", ""]
    assert table.iloc[0]["Reconstruction T1WI α"] == "—"  # present modalities are not reconstructed
    assert "±" in table.iloc[1]["Auxiliary γ"]
    latex = (out / "table3.tex").read_text()
    assert "\\begin{tabular}" in latex and "\\checkmark" in latex and "$\\pm$" in latex
    assert (out / "table3.md").read_text().startswith("| Model |")
    interactions = pd.read_csv(out / "interactions.csv")
    assert set(interactions["present"]) == {"T1WI+FLAIR", "DWI"}
    for figure in ("importance.png", "marginals.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_trials_become_notes_not_crashes():
    space = {
        KEY: PAPER_MMT2M,
        "mmt2m/T1WI+DWI": {**PAPER_MMT2M, "alpha_FLAIR": PAPER_MMT2M["beta"]},
        "mmt2m/FLAIR+DWI": PAPER_MMT2M,  # no trials at all
        "mmt1m/T1WI": {"lr": PAPER_MMT2M["lr"], "beta": PAPER_MMT2M["beta"]},
    }
    space["mmt2m/T1WI+DWI"].pop("alpha_DWI")
    trials = synthetic_trials({k: v for k, v in space.items() if k != "mmt2m/FLAIR+DWI"}, 30, seed=3)
    first = trials["present"] == "T1WI+FLAIR"
    trials.loc[first, "config/alpha_DWI"] = 0.5  # constant across trials
    ids = trials.loc[first, "trial_id"].unique()
    trials.loc[trials["trial_id"] == ids[0], "status"] = "error"  # a failed trial
    trials.loc[(trials["trial_id"] == ids[1]) & (trials["fold"] == 0), "auc"] = np.nan  # undefined on a fold
    few = trials["present"] == "T1WI"
    trials = trials[~few | trials["trial_id"].isin(trials.loc[few, "trial_id"].unique()[:4])]
    result = importance(study_of(trials, space), ImportanceOptions(seeds=1, jobs=1), progress=False)
    by_key = {c.key: c for c in result.configurations}

    constant = by_key[KEY]
    assert constant.cells["alpha_DWI"] == "constant" and "alpha_DWI" not in constant.main
    assert constant.n_trials == 28 and set(constant.main) == {"lr", "beta"}
    assert any("2 of 30 trials failed" in note for note in constant.notes)
    assert by_key["mmt2m/FLAIR+DWI"].cells == dict.fromkeys(PAPER_MMT2M, "no trials")
    assert by_key["mmt1m/T1WI"].cells == {"lr": "n=4<10", "beta": "n=4<10"}
    table = table3(result)
    assert table.loc[table["Model"] == "MMT-1M", "lr"].item() == "n=4<10"
    notes = "\n".join(result.all_notes())
    assert "mmt2m/FLAIR+DWI: no complete trials" in notes
    assert "mmt1m/T1WI: only 4 complete trials" in notes


def test_without_a_space_bounds_are_inferred_and_said_so():
    trials = synthetic_trials({KEY: PAPER_MMT2M}, 40, seed=4)
    result = importance(study_of(trials, None), ImportanceOptions(seeds=1, jobs=1), progress=False)
    (configuration,) = result.configurations
    params = configuration.params
    assert params["lr"].log and not params["beta"].log  # two decades sampled -> log scale
    assert set(params) == set(PAPER_MMT2M)  # epochs and seed are fixed for the study: not analysed
    assert any("no space.json" in note for note in result.notes)
    assert any(note.startswith("fixed for every trial") and "epochs=200" in note for note in result.notes)


def test_values_outside_the_space_are_an_error():
    trials = synthetic_trials({KEY: PAPER_MMT2M}, 20, seed=5)
    narrow = {**PAPER_MMT2M, "beta": Distribution("uniform", 0.5, 1.0)}
    with pytest.raises(InputError, match=r"beta has values .* outside the search space's bounds 0.5..1"):
        importance(study_of(trials, {KEY: narrow}), ImportanceOptions(seeds=1, jobs=1), progress=False)


def _write(folder, name: str, text: str):
    (folder / name).write_text(text)
    return folder / name


HEADER = "model,present,trial_id,fold,auc\n"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p / "missing", "no such file or folder"),
        (lambda p: p, "no trials.parquet or trials.csv here"),
        (lambda p: _write(p, "trials.parquet", "not parquet").parent, "cannot read the trials table"),
        (lambda p: _write(p, "t.csv", "model,present,fold\nmmt1m,T1WI,0\n"), "no 'trial_id'"),
        (
            lambda p: (
                (
                    _write(p, "data.json", '{"modalities": ["T1WI", "FLAIR", "DWI"]}'),
                    _write(p, "trials.csv", HEADER + "mmt1m,T2,a,0,0.5\n"),
                )[1].parent
            ),
            "row 2: present names unknown modality 'T2' (the study's: T1WI, FLAIR, DWI)",
        ),
        (lambda p: _write(p, "t.csv", HEADER + "mmt1m,T1WI,a,0,high\n"), "row 2: auc is not a number"),
    ],
)
def test_unreadable_input_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert main([str(path), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "analysis").exists()


def test_writes_are_atomic_and_complete(tmp_path):
    trials = synthetic_trials({KEY: PAPER_MMT2M}, 30, seed=6)
    result = importance(
        study_of(trials, {KEY: PAPER_MMT2M}), ImportanceOptions(seeds=1, jobs=1), progress=False
    )
    write_importance(result, tmp_path, plots=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "importance.csv",
        "interactions.csv",
        "table3.csv",
        "table3.md",
        "table3.tex",
    ]


def test_load_study_reads_a_results_folder_and_its_space(tmp_path):
    trials = synthetic_trials({KEY: PAPER_MMT2M}, 5, seed=7)
    trials.to_parquet(tmp_path / "trials.parquet")
    write_space(tmp_path, {KEY: PAPER_MMT2M})
    study = load_study(tmp_path)
    assert study.space[KEY]["lr"] == PAPER_MMT2M["lr"] and study.losses is None
    assert len(study.trials) == 25 and set(study.trials["status"]) == {"ok"}


def test_figures_a_paper_can_use(tmp_path):
    """A PDF beside every PNG, --dpi honoured, main-effect panels three to a row with a minimum y-range and
    Table 3's labels, importance bars on one shared axis, and a warning where trials are few."""
    import matplotlib.pyplot as plt
    from matplotlib import image

    from mmt_tune.analysis import plots

    other = {("alpha_FLAIR" if k == "alpha_DWI" else k): d for k, d in PAPER_MMT2M.items()}
    space = {KEY: PAPER_MMT2M, "mmt2m/T1WI+DWI": other}
    trials = synthetic_trials(space, 30, seed=6)
    result = importance(study_of(trials, space), ImportanceOptions(seeds=2, jobs=1), progress=False)
    assert any(note.startswith("warning: 2 configuration(s) have fewer than 50") for note in result.notes)
    shown = []
    original = plots._save
    plots._save = lambda fig, path, dpi=plots.DPI: (shown.append(fig), original(fig, path, dpi))[1]
    try:
        write_importance(result, tmp_path / "a", dpi=100)
        write_importance(result, tmp_path / "b", dpi=200)
    finally:
        plots._save = original
    for name in ("importance", "marginals"):
        assert (tmp_path / "a" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        small = image.imread(tmp_path / "a" / f"{name}.png").shape
        large = image.imread(tmp_path / "b" / f"{name}.png").shape
        assert large[1] == pytest.approx(2 * small[1], rel=0.05), "PNG width follows --dpi"
    bars, curves = shown[0], shown[1]
    limits = {ax.get_xlim() for ax in bars.axes if ax.get_visible()}
    assert len(limits) == 1, "one shared x-axis"
    assert all("few trials" in ax.get_title() for ax in bars.axes if ax.get_visible())
    labels = {t.get_text() for ax in bars.axes for t in ax.get_yticklabels()}
    assert "Classification β" in labels and "beta" not in labels
    panels = [ax for ax in curves.axes if ax.get_visible()]
    assert len(panels) == 6 and len({round(ax.get_position().x0, 3) for ax in panels}) == 3, "3 per row"
    assert all(ax.get_ylim()[1] - ax.get_ylim()[0] >= plots.MIN_Y_RANGE for ax in panels)
    assert {ax.get_xlabel() for ax in panels} >= {"Classification β", "lr"}
    plt.close("all")
