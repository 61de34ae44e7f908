"""``python -m mmt_tune.dashboard``: the study's W&B workspace, defined as code (wandb-workspaces).

Panels: parallel coordinates of the searched hyperparameters (lr, alpha_<MOD>, beta, gamma, kl_weight)
ending in the cross-validated AUC, which colours the lines; cross-validated metrics per modality
configuration (runs grouped by configuration); and loss curves (training and validation classification and
reconstruction losses, fold means per epoch). With ``--entity`` and ``--project`` and an API key it saves the
workspace to W&B; with ``--out`` (or without an API key) it writes the workspace's JSON spec to a file, which
is what the tests check and what ``save()`` would upload.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmt_tune import models
from mmt_tune.cli import HelpFormatter, add_version
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS
from mmt_tune.modalities import MODALITIES


def hyperparameters(modalities: Sequence[str] = MODALITIES) -> list[str]:
    """The searched values a panel plots: lr and every registered model's loss weights, per modality."""
    names = ["lr"]
    for weight in models.TERM_WEIGHTS.values():
        for name in [weight.replace("<MOD>", m) for m in modalities] if "<MOD>" in weight else [weight]:
            if name not in names and any(weight in models.get(m).weights for m in models.names()):
                names.append(name)
    return names


def build_workspace(
    entity: str, project: str, name: str = "mmt-tune study", modalities: Sequence[str] = MODALITIES
) -> Any:
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    columns = [
        wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p), log=(p == "lr"))
        for p in hyperparameters(modalities)
    ]
    # The last column colours the lines.
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric("cv/auc"), display_name="CV AUC"))
    by_configuration = wr.Config("configuration")
    metrics = [
        wr.BarPlot(
            title=f"CV {m} per configuration",
            metrics=[wr.SummaryMetric(f"cv/{m}")],
            groupby=by_configuration,
            groupby_aggfunc="max",
            groupby_rangefunc="none",
        )
        for m in METRICS
    ]
    losses = [
        wr.LinePlot(title="classification loss", x="epoch", y=["train/classification", "val/classification"]),
        wr.LinePlot(
            title="reconstruction losses",
            x="epoch",
            y=[f"{s}/reconstruction_{m}" for s in ("train", "val") for m in modalities],
        ),
        wr.LinePlot(
            title="validation AUC per epoch",
            x="epoch",
            y=["auc"],
            groupby=by_configuration,
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
        ),
    ]
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[
            ws.Section(
                name="Hyperparameters vs CV AUC",
                panels=[wr.ParallelCoordinatesPlot(columns=columns)],
                is_open=True,
            ),
            ws.Section(name="Metrics per modality configuration", panels=metrics, is_open=True),
            ws.Section(name="Loss curves", panels=losses, is_open=True),
        ],
        runset_settings=ws.RunsetSettings(groupby=[ws.Config("configuration")]),
    )


def workspace_spec(workspace: Any) -> dict:
    """The workspace as the JSON view W&B stores (wandb-workspaces' view model, as ``save()`` uploads it)."""
    from mmt_tune._internals import workspace_model

    return workspace_model(workspace).model_dump(by_alias=True, exclude_none=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.dashboard",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("--entity", required=True, help="W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="W&B project of the study's runs")
    parser.add_argument("--name", default="mmt-tune study", help="workspace name")
    parser.add_argument(
        "--modalities", default=",".join(MODALITIES), help="the study's modalities, comma-separated"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the workspace spec (JSON) here instead of saving it to W&B",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune._io import write_text_atomic

    args = build_parser().parse_args(argv)
    try:
        modalities = [m for m in args.modalities.split(",") if m]
        workspace = build_workspace(args.entity, args.project, args.name, modalities)
    except Exception as exc:  # pydantic validation of names and the like
        print(f"error: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 2
    out = args.out
    if out is None and not os.environ.get("WANDB_API_KEY"):
        out = Path(f"{args.project}-workspace.json")
        print(f"no WANDB_API_KEY: writing the workspace spec to {out} instead of saving it to W&B")
    if out is not None:
        write_text_atomic(out, json.dumps(workspace_spec(workspace), indent=2) + "\n")
        print(f"wrote {out}")
        return 0
    try:
        saved = workspace.save()
    except Exception as exc:
        raise InputError(f"could not save the workspace to W&B: {exc}") from None
    print(f"saved workspace: {saved.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
