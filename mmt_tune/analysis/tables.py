"""Table writers: one display table (strings, already formatted) as Markdown, CSV and LaTeX, written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmt_tune._io import atomic_path, write_text_atomic

TICK = "✓"
DASH = "—"


def parameter_label(name: str) -> str:
    """A hyperparameter as Table 3 and the figures name it: ``beta`` -> ``Classification β``,
    ``alpha_DWI`` -> ``Reconstruction DWI α``; other names as they are."""
    if name == "beta":
        return "Classification β"
    if name.startswith("alpha_"):
        return f"Reconstruction {name.removeprefix('alpha_')} α"
    return {"gamma": "Auxiliary γ", "kl_weight": "KL weight", "lr": "lr"}.get(name, name)


def to_markdown(table: pd.DataFrame, notes: list[str] | None = None) -> str:
    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = [
        "| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    text = "\n".join([header, rule, *rows]) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    return text


def to_latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (``\\usepackage{booktabs}``); ticks become ``\\checkmark`` (amssymb)."""
    columns = "l" * 1 + "c" * (len(table.columns) - 1)
    lines = [
        "% needs \\usepackage{booktabs} (rules) and \\usepackage{amssymb} (\\checkmark)",
        "\\begin{table}[ht]",
        "\\centering",
        f"\\caption{{{_latex(caption)}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\toprule",
        " & ".join(_latex(str(c)) for c in table.columns) + " \\\\",
        "\\midrule",
    ]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(_latex(_cell(v)) for v in row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    table: pd.DataFrame, folder: Path, stem: str, caption: str, notes: list[str] | None = None
) -> list[Path]:
    """``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex`` in ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.{ext}" for ext in ("md", "csv", "tex")]
    write_text_atomic(paths[0], to_markdown(table, notes))
    with atomic_path(paths[1]) as tmp:
        table.to_csv(tmp, index=False)
    write_text_atomic(paths[2], to_latex(table, caption, f"tab:{stem}"))
    return paths


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


_LATEX = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
}


def _latex(text: str) -> str:
    escaped = "".join(_LATEX.get(ch, ch) for ch in text)
    return (
        escaped.replace(TICK, "\\checkmark{}")
        .replace(" ± ", " $\\pm$ ")
        .replace(DASH, "---")
        .replace("α", "$\\alpha$")
        .replace("β", "$\\beta$")
        .replace("γ", "$\\gamma$")
    )
