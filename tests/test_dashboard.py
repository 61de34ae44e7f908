"""The W&B workspace spec, built offline with wandb-workspaces."""

from __future__ import annotations

import json

from mmt_tune import dashboard


def _panels(spec: dict) -> list[dict]:
    sections = spec["spec"]["section"]["panelBankConfig"]["sections"]
    return [panel for section in sections for panel in section["panels"]]


def test_spec_has_parallel_coordinates_metrics_per_configuration_and_loss_curves(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    out = tmp_path / "workspace.json"
    assert dashboard.main(["--entity", "lab", "--project", "brainmets", "--out", str(out)]) == 0
    spec = json.loads(out.read_text())
    assert spec["entity"] == "lab" and spec["project"] == "brainmets"
    text = json.dumps(spec)
    panels = _panels(spec)
    kinds = [p["viewType"] for p in panels]
    assert kinds.count("Parallel Coordinates Plot") == 1
    assert kinds.count("Bar Chart") == 5 and kinds.count("Run History Line Plot") == 3
    parallel = next(p for p in panels if p["viewType"] == "Parallel Coordinates Plot")
    column_text = json.dumps(parallel)
    for name in ("lr", "alpha_T1WI", "alpha_FLAIR", "alpha_DWI", "beta", "gamma", "cv/auc"):
        assert name in column_text, name
    assert column_text.rindex("cv/auc") > column_text.rindex("gamma"), "AUC is the last (colouring) column"
    for loss in ("train/classification", "val/classification", "val/reconstruction_DWI"):
        assert loss in text
    assert "configuration" in json.dumps(spec["spec"]), "runs are grouped by modality configuration"


def test_without_api_key_it_writes_the_spec_instead_of_saving(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert dashboard.main(["--entity", "lab", "--project", "p"]) == 0
    assert "no WANDB_API_KEY" in capsys.readouterr().out
    spec = json.loads((tmp_path / "p-workspace.json").read_text())
    assert (spec["entity"], spec["project"]) == ("lab", "p")
    assert [p["viewType"] for p in _panels(spec)].count("Parallel Coordinates Plot") == 1
