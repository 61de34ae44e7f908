"""``python -m analysis.report``: every table and figure of a study in one folder, with an index to open.

Runs the importance analysis (Table 3) and the aggregated metrics (Table 2, comparisons) and writes
``index.md`` and a static ``index.html`` (no scripts, no external assets) beside the tables and PNGs. The
report contains hyperparameters, metrics and per-epoch losses only: no patient identifier, path or date,
so the folder can be shared.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmt_tune._io import write_text_atomic
from mmt_tune.analysis.cli import default_out
from mmt_tune.analysis.comparisons import headline
from mmt_tune.analysis.importance.cli import options_from
from mmt_tune.analysis.importance.study import importance
from mmt_tune.analysis.importance.table import table3, write_importance
from mmt_tune.analysis.importance.types import ImportanceOptions, ImportanceResult
from mmt_tune.analysis.metrics import aggregate, write_metrics
from mmt_tune.analysis.results import Study, load_study
from mmt_tune.analysis.tables import to_markdown
from mmt_tune.analysis.types import MetricsResult
from mmt_tune.errors import InputError, describe

FIGURES = (
    ("configurations.png", "Best trial per configuration (paper Fig. 6)"),
    ("roc.png", "ROC curves of the best trials, fold-averaged with ± std bands (paper Fig. 7)"),
    ("robustness.png", "Missing-modality robustness: AUC per modality subset at test time"),
    ("calibration.png", "Calibration: fold-averaged reliability of each family's best configuration"),
    ("decision_curve.png", "Decision curve: net benefit of each family's best configuration"),
    ("losses.png", "Loss curves of the best MMT configuration (paper Fig. 8)"),
    ("importance.png", "Hyperparameter importance (paper Table 3)"),
    ("marginals.png", "Main-effect (marginal) curves"),
)


@dataclass
class Report:
    folder: Path
    metrics: MetricsResult
    importance: ImportanceResult

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


def write_report(
    study: Study,
    out: Path,
    objective: str = "auc",
    options: ImportanceOptions | None = None,
    progress: bool = True,
    dpi: int | None = None,
) -> Report:
    """Tables 2 and 3, the comparisons, every figure, and ``index.md`` / ``index.html`` in ``out``.

    Everything is written to a temporary folder beside ``out`` that replaces ``out`` only when complete, so a
    failure leaves the previous report (or nothing), never half a report.
    """
    import shutil

    final = Path(out)
    out = final.parent / f".{final.name}.partial"
    shutil.rmtree(out, ignore_errors=True)
    try:
        out.mkdir(parents=True)
    except OSError as exc:
        raise InputError(f"{out.parent}: cannot write the report here ({exc.strerror or exc})") from None
    try:
        options = options or ImportanceOptions(objective=objective)
        metrics = aggregate(study, objective)
        write_metrics(metrics, study, out, dpi=dpi)
        result = importance(study, options, progress=progress)
        write_importance(result, out, dpi=dpi)
        sections, figures = _sections(Report(out, metrics, result), study), _figures(out)
        write_text_atomic(out / "index.md", _markdown(sections, figures, study))
        write_text_atomic(out / "index.html", _html(sections, figures, study))
        if final.exists():
            old = final.parent / f".{final.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            out.rename(final)
            shutil.rmtree(old)
        else:
            out.rename(final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return Report(final, metrics, result)


def _sections(report: Report, study: Study) -> list[tuple[str, pd.DataFrame | None, list[str], list[str]]]:
    """(title, table, notes, downloads) for each part of the report."""
    metrics, result = report.metrics, report.importance
    line = headline(metrics)
    return [
        (
            f"Table 2: best trial per configuration (by mean validation {metrics.objective})",
            metrics.table2(),
            ([line] if line else []) + metrics.notes,
            ["table2.md", "table2.csv", "table2.tex", "best_trials.csv"],
        ),
        (
            "Comparisons: each deep configuration vs its best baseline, MMT vs MFN-VAE on the same sequences, "
            "and each vs the full-modality MFN-VAE",
            metrics.comparison_table(),
            [
                "differences of fold means; p: corrected resampled t-test over the shared folds; Holm: adjusted "
                "across the comparisons of each metric (DeLong, plain t and Wilcoxon in comparisons.csv)"
            ],
            ["comparison.md", "comparison.csv", "comparison.tex", "comparisons.csv"],
        ),
        *_robustness_section(metrics),
        (
            f"Table 3: hyperparameter importance ({result.options.engine}, mean ± std over {result.spread or f'{result.options.seeds} forest seeds'})",
            table3(result),
            result.all_notes(),
            ["table3.md", "table3.csv", "table3.tex", "importance.csv", "interactions.csv"],
        ),
    ]


def _robustness_section(metrics: MetricsResult) -> list:
    from mmt_tune.analysis.robustness import robustness_long, robustness_table

    table = robustness_table(robustness_long(metrics, metrics.robustness), metrics.modalities)
    if table.empty:
        return []
    notes = [
        "mean fold AUC [95% corrected resampled t CI]; 'trained for the subset': the best deep configuration "
        "with exactly those modalities; '(all)': one model trained on all, the others left out at test time"
    ]
    files = ["robustness.md", "robustness.csv", "robustness.tex", "robustness_long.csv"]
    return [("Missing-modality robustness", table, notes, files)]


def _figures(folder: Path) -> list[tuple[str, str]]:
    return [(name, caption) for name, caption in FIGURES if (folder / name).is_file()]


def _markdown(sections, figures: list[tuple[str, str]], study: Study) -> str:
    parts = [
        f"# Study report: {_study_name(study)}\n",
        *(f"**{line}**\n" for line in _data_lines(study)[:-1]),
    ]
    parts += [_data_lines(study)[-1] + "\n", _summary(study) + "\n"]
    for title, table, notes, files in sections:
        parts.append(f"## {title}\n")
        parts.append(to_markdown(table, notes))
        parts.append("Files: " + ", ".join(f"[{f}]({f})" for f in files) + "\n")
    parts.append("## Figures\n")
    parts += [f"### {caption}\n\n![{caption}]({name})\n" for name, caption in figures]
    return "\n".join(parts)


def _html(sections, figures: list[tuple[str, str]], study: Study) -> str:
    body = [
        f"<h1>Study report: {html.escape(_study_name(study))}</h1>",
        *(f'<p class="warning">{html.escape(line)}</p>' for line in _data_lines(study)[:-1]),
        f"<p>{html.escape(_data_lines(study)[-1])}</p>",
        f"<p>{html.escape(_summary(study))}</p>",
    ]
    for title, table, notes, files in sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(_html_table(table, title))
        if notes:
            body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
        body.append("<p>Files: " + ", ".join(f'<a href="{f}">{f}</a>' for f in files) + "</p>")
    body.append("<h2>Figures</h2>")
    for name, caption in figures:
        body.append(
            f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:center}img{max-width:100%}figure{margin:1em 0}"
        ".warning{background:#fde8e8;border:1px solid #b22222;padding:.5em;font-weight:bold}"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Study report: {html.escape(_study_name(study))}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_table(table: pd.DataFrame, caption: str) -> str:
    """A table with its caption and column headers scoped (screen readers read each cell with its header)."""
    text = table.to_html(index=False, escape=True, border=0)
    text = text.replace("<th>", '<th scope="col">')
    head, _, rest = text.partition(">")
    return f"{head}><caption>{html.escape(caption)}</caption>{rest}"


def _study_name(study: Study) -> str:
    names = sorted(set(study.trials["study"].astype(str)))
    return ", ".join(names)


def _data_lines(study: Study) -> list[str]:
    """Where the numbers come from (data.json): a loud line for the phantom, then size, balance, provenance."""
    from mmt_tune.analysis.completion import completion_notes

    data = study.data
    banner = [
        n
        for n in completion_notes(study.trials, study.plan.get("samples"), study.plan.get("configurations"))
        if n.startswith("UNFINISHED")
    ]
    if not data:
        return [*banner, "Data: not recorded (a trials table without the study's data.json)."]
    lines = banner
    if data.get("phantom"):
        lines.append(
            "PHANTOM COHORT: these results come from synthetic images made by mmt-tune, not from patients."
        )
    features = ", ".join(f"{m} {n}" for m, n in (data.get("features_per_modality") or {}).items())
    lines.append(
        f"Data: {data.get('rows')} rows ({data.get('patients')} patients), {data.get('positives')} positive "
        f"(label 1: {data.get('positive_class') or 'as the table says'}) / {data.get('negatives')} negative; "
        f"modalities {', '.join(data.get('modalities', []))} (features: {features}); " + _provenance(data)
    )
    return lines


def _provenance(data: dict) -> str:
    """Where the features come from: PyRadiomics with its settings' hash, or a table imported as it was."""
    table = f"feature table sha256 {str(data.get('features_sha256'))[:16]}"
    if data.get("pyradiomics_version"):
        settings = str(data.get("settings_sha256"))[:16] if data.get("settings_sha256") else "not recorded"
        return f"{table}; PyRadiomics {data['pyradiomics_version']}, settings sha256 {settings}."
    if data.get("source") == "imported":
        return f"imported table (features computed elsewhere, mmt-tune convert), {table}."
    return f"{table}; extraction not recorded in the table."


def _summary(study: Study) -> str:
    trials = study.trials
    counts = trials.drop_duplicates(["model", "present", "trial_id"])["status"].value_counts()
    status = ", ".join(f"{n} {s}" for s, n in counts.items())
    configurations = trials[["model", "present"]].drop_duplicates().shape[0]
    return f"{configurations} configurations; trials: {status}."


def build_parser() -> argparse.ArgumentParser:
    from mmt_tune.analysis.importance.cli import build_parser as importance_parser

    parser = importance_parser()
    from mmt_tune.cli import command

    parser.prog = command("report")
    parser.description = (
        "Everything about a study in one folder: Table 2, the comparisons, Table 3, ROC / loss / "
        "configuration / importance / main-effect figures, and index.html + index.md to open."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.no_plots:
        print("note: --no-plots is ignored by the report (its index shows the figures)", file=sys.stderr)
    try:
        study = load_study(args.results, args.space, args.study)
        out = args.out or default_out(args.results)
        report = write_report(
            study, out, args.objective, options_from(args), progress=not args.no_progress, dpi=args.dpi
        )
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    print(to_markdown(report.metrics.table2(), [line for line in [headline(report.metrics)] if line]))
    print(to_markdown(table3(report.importance), report.importance.all_notes()))
    print(f"report: {report.index} (and index.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
