"""Every figure of a report fits a journal page as drawn: at most 17.5 cm wide (a double column) at 300 dpi,
text of 7-9 pt, one colour per model family, and no figure without data."""

from __future__ import annotations

import re
import zlib

import pytest

from mmt_tune import models
from mmt_tune.analysis.importance.types import ImportanceOptions
from mmt_tune.analysis.report import write_report
from mmt_tune.analysis.results import Study

DOUBLE_CM = 17.5


def png_size(path) -> tuple[int, int, float]:
    """(width px, height px, dots per inch) from the PNG's IHDR and pHYs chunks."""
    data = path.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    at = data.index(b"pHYs")
    per_metre = int.from_bytes(data[at + 4 : at + 8], "big")
    return width, height, per_metre * 0.0254


def pdf_text_sizes(path) -> list[float]:
    """The size of every text run of a PDF matplotlib wrote (``<size> Tf`` in its content streams)."""
    sizes = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", path.read_bytes(), re.S):
        try:
            text = zlib.decompress(stream)
        except zlib.error:
            text = stream
        sizes += [float(m) for m in re.findall(rb"/F\d+ ([\d.]+) Tf", text)]
    return sizes


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from test_table2 import losses_and_predictions

    from mmt_tune.analysis.synthetic import paper_space, synthetic_trials

    keys = ("mmt2m/T1WI+FLAIR", "mfnvae/T1WI+FLAIR+DWI", "mmt1m/DWI", "mfnvae/DWI")
    space = {k: v for k, v in paper_space().items() if k in keys}
    trials = synthetic_trials(space, 12, seed=0)
    losses, predictions = losses_and_predictions(trials, [f"P{i:03d}" for i in range(40)])
    study = Study(tmp_path_factory.mktemp("s"), trials, losses, predictions, space)
    folder = tmp_path_factory.mktemp("report") / "report"
    return write_report(study, folder, options=ImportanceOptions(seeds=2, jobs=1), progress=False)


def test_every_figure_fits_a_double_column_at_300_dpi_with_7_to_9_pt_text(report):
    pngs = sorted(report.folder.glob("*.png"))
    assert {p.name for p in pngs} >= {"roc.png", "losses.png", "configurations.png", "calibration.png"}
    for png in pngs:
        width, height, dpi = png_size(png)
        assert dpi == pytest.approx(300, abs=1), png.name
        assert width / dpi * 2.54 <= DOUBLE_CM + 0.5, f"{png.name}: {width / dpi * 2.54:.1f} cm wide"
        sizes = pdf_text_sizes(png.with_suffix(".pdf"))
        assert sizes, f"{png.name}: no text found in its PDF"
        assert min(sizes) >= 7 and max(sizes) <= 9, f"{png.name}: text sizes {sorted(set(sizes))}"


def test_model_families_have_distinct_colour_blind_safe_colours():
    okabe_ito = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"}
    shown = ["mmt2m", "mmt1m", "mfnvae", "logreg", "forest"]
    colours = [models.get(m).colour.upper() for m in shown]
    assert len(set(colours)) == len(shown) and set(colours) <= okabe_ito


def test_no_figure_is_drawn_without_its_data(tmp_path):
    from mmt_tune.analysis.importance.types import ImportanceResult
    from mmt_tune.analysis.plots import importance_bars, marginals

    empty = ImportanceResult(configurations=[], notes=[], options=ImportanceOptions())
    assert importance_bars(empty, tmp_path / "i.png") is None
    assert marginals(empty, tmp_path / "m.png") is None
    assert list(tmp_path.iterdir()) == []


def test_loss_figures_tick_whole_epochs(report, monkeypatch):
    """Three epochs would get half-epoch ticks by default; each panel's ticks are whole epochs."""
    from mmt_tune.analysis import plots

    drawn = []
    # keep the drawn figure to read its ticks (our own save step, replaced; matplotlib draws for real)
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi=300: drawn.append(fig) or path)
    losses = report.metrics  # the study's best rows; losses of three epochs for its best MMT trial
    best = losses.best.dropna(subset=["trial_id"])
    top = best[best["model"] == "mmt2m"].iloc[0]
    rows = [
        {
            "model": "mmt2m",
            "present": top["present"],
            "trial_id": str(top["trial_id"]),
            "fold": f,
            "split": split,
            "epoch": e,
            "classification": 1.0 / (e + 1),
        }
        for f in range(2)
        for split in ("train", "val")
        for e in range(3)
    ]
    import pandas as pd

    plots.loss_curves(losses, pd.DataFrame(rows), report.folder / "l.png")
    ticks = [t for ax in drawn[0].axes for t in ax.get_xticks() if 0 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
