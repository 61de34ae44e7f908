"""``python -m mmt_tune.predict --bundle B --features new.parquet --out predictions.csv``: score new patients.

Each row is scored by the bundle's model for exactly the modalities that row has (a modality is missing
when all its feature values are empty): a configuration whose present set is the row's (the best by
cross-validated score when several are), else a subset-capable model (MFN-VAE) trained on more modalities,
which reads only the row's, else the best configuration needing a subset of the row's modalities (the
others are then ignored, and the ``model`` column says which were read). A row no model can score is
refused with its reason. The table must have the bundle's feature columns for every modality it has, and
was best extracted with the same settings (checked through the hash in the table's metadata).

With labels in the table, the external-validation metrics are printed with 95% bootstrap intervals and
written beside the predictions (``<out>.metrics.json``) with a calibration plot (``<out>.calibration.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmt_tune.bundle import Bundle, load_bundle
from mmt_tune.cli import add_version
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS, all_metrics
from mmt_tune.modalities import COLUMN_SEPARATOR, table_modalities


def read_table(path: Path) -> tuple[pd.DataFrame, dict[str, str], bool]:
    """A table to score (Parquet or CSV): patient_id, feature columns, optional labels; its metadata;
    whether it has labels."""
    from mmt_tune.data.table import read_feature_table, validate_features, validate_table

    if not path.is_file():
        raise InputError(f"{path}: feature table not found")
    if path.suffix != ".csv":
        try:
            return (*read_feature_table(path), True)
        except InputError as exc:
            if "label" not in str(exc):
                raise
    try:
        table = (
            pd.read_csv(path, dtype={"patient_id": str}) if path.suffix == ".csv" else pd.read_parquet(path)
        )
    except Exception as exc:  # pandas / pyarrow raise many types for malformed input
        raise InputError(
            f"{path}: not a readable table ({str(exc).splitlines()[0] if str(exc) else exc!r})"
        ) from None
    if "patient_id" not in table.columns:
        raise InputError(f"{path}: missing required column 'patient_id'")
    labelled = "label" in table.columns and table["label"].notna().all()
    if "label" in table.columns and not labelled and table["label"].notna().any():
        print(f"note: {path}: some rows have no label: no validation metrics", file=sys.stderr)
    if labelled:
        return validate_table(table, str(path)), {}, True
    return validate_features(table, str(path)), {}, False


def check_features(table: pd.DataFrame, metadata: dict, bundle: Bundle, source: str) -> list[str]:
    """One :class:`InputError` when the table's features are not the bundle's; notes otherwise."""
    notes = []
    expected = bundle.info.get("feature_columns", {})
    for modality in table_modalities(list(table.columns)):
        if modality not in expected:
            notes.append(f"{modality}: not a modality of the bundle (ignored)")
            continue
        have = [c for c in table.columns if c.startswith(f"{modality}{COLUMN_SEPARATOR}")]
        lacking = [c for c in expected[modality] if c not in have]
        extra = [c for c in have if c not in expected[modality]]
        if lacking or extra:
            what = (
                f"lacks {lacking[0]}" if lacking else f"has {extra[0]}, which the bundle was not trained on"
            )
            raise InputError(
                f"{source}: {modality} features differ from the bundle's ({what}; "
                f"{len(lacking)} missing, {len(extra)} extra of {len(expected[modality])}): extract them "
                "with the settings the bundle's table used"
            )
    for modality in expected:
        if not any(c.startswith(f"{modality}{COLUMN_SEPARATOR}") for c in table.columns):
            notes.append(f"{modality}: no columns in the table (missing for every row)")
    ours, theirs = bundle.info.get("settings_sha256"), metadata.get("settings_sha256")
    if ours and theirs and ours != theirs:
        raise InputError(
            f"{source}: extracted with other PyRadiomics settings than the bundle's training table "
            f"(settings sha256 {theirs[:12]} vs {ours[:12]})"
        )
    if ours and not theirs:
        notes.append("the table records no extraction settings: make sure they are the bundle's")
    return notes


def available_modalities(table: pd.DataFrame, modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Per row, the modalities it has (a modality is missing when every one of its values is empty)."""
    present = {}
    for m in modalities:
        columns = [c for c in table.columns if c.startswith(f"{m}{COLUMN_SEPARATOR}")]
        present[m] = table[columns].notna().any(axis=1).to_numpy() if columns else np.zeros(len(table), bool)
    return [tuple(m for m in modalities if present[m][i]) for i in range(len(table))]


def route(bundle: Bundle, available: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The configuration that scores a row with ``available`` modalities and the modalities it reads; an
    :class:`InputError` with the reason when none can."""
    if not available:
        raise InputError("no usable modality (every feature value is empty)")

    def best(keys: list[str]) -> str:
        scores = bundle.scores
        return max(
            keys, key=lambda k: (scores.get(k) if scores.get(k) is not None else -np.inf, -keys.index(k))
        )

    have = set(available)
    fitted = bundle.configurations
    exact = [k for k, f in fitted.items() if set(f.config.present) == have]
    if exact:
        return best(exact), available
    wider = [k for k, f in fitted.items() if f.config.spec.subsets and have < set(f.config.present)]
    if wider:
        return best(wider), available
    narrower = [k for k, f in fitted.items() if set(f.config.present) < have]
    if narrower:
        key = best(narrower)
        return key, fitted[key].config.present
    raise InputError(f"no model in the bundle for {'+'.join(available)} (it has: {', '.join(fitted)})")


def predict_table(bundle: Bundle, table: pd.DataFrame) -> pd.DataFrame:
    """One row per input row: ids, the modalities it has, the configuration that scored it and what it
    read, the probability and predicted class, or the reason it was refused."""
    rows = []
    for available in available_modalities(table, bundle.modalities):
        try:
            key, reads = route(bundle, available)
            reason = ""
        except InputError as exc:
            key, reads, reason = "", (), str(exc)
        rows.append(
            {"available": "+".join(available), "model": key, "reads": "+".join(reads), "reason": reason}
        )
    out = pd.DataFrame(rows, index=table.index)
    out["probability"] = np.nan
    for (key, reads), group in out[out["model"] != ""].groupby(["model", "reads"], sort=False):
        fitted = bundle.configurations[key]
        out.loc[group.index, "probability"] = fitted.predict(table.loc[group.index], reads.split("+"))
    out["predicted"] = np.where(out["probability"].isna(), pd.NA, (out["probability"] >= 0.5).astype(int))
    ids = [c for c in ("patient_id", "lesion_id", "label") if c in table.columns]
    return pd.concat([table[ids], out], axis=1).reset_index(drop=True)


def validation(predictions: pd.DataFrame, seed: int = 0) -> dict:
    """External-validation metrics of the scored rows, each with a 95% bootstrap interval, and calibration."""
    from mmt_tune.metrics import METRIC_FUNCTIONS
    from mmt_tune.stats import bootstrap_interval

    scored = predictions.dropna(subset=["probability"])
    y, p = scored["label"].to_numpy(int), scored["probability"].to_numpy(float)
    result = {"n": len(y), "positives": int(y.sum()), "prevalence": float(y.mean()) if len(y) else None}
    for metric, value in all_metrics(y, p).items():
        low, high = bootstrap_interval(y, p, METRIC_FUNCTIONS[metric], seed=seed)
        result[metric] = {"value": value, "ci95": [low, high]}
    result["brier"] = float(np.mean((p - y) ** 2)) if len(y) else None
    result["calibration"] = calibration(y, p)
    result["interval"] = "percentile bootstrap over patients, 2000 resamples"
    return result


def calibration(y: np.ndarray, p: np.ndarray) -> dict:
    """Calibration intercept (calibration-in-the-large) and slope: a logistic regression of the labels on
    the logit of the predicted probability (ideal: 0 and 1)."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return {"intercept": None, "slope": None}
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    fit = LogisticRegression(C=np.inf).fit(logit[:, None], y)
    return {"intercept": float(fit.intercept_[0]), "slope": float(fit.coef_[0, 0])}


def calibration_plot(predictions: pd.DataFrame, path: Path, bins: int = 10) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    from mmt_tune._io import atomic_path

    scored = predictions.dropna(subset=["probability"])
    y, p = scored["label"].to_numpy(int), scored["probability"].to_numpy(float)
    observed, predicted = calibration_curve(y, p, n_bins=min(bins, max(2, len(y) // 10)), strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="#8C8C8C", linestyle="--", label="ideal")
    ax.plot(predicted, observed, marker="o", color="#4C72B0", label="bundle")
    ax.set(xlabel="predicted probability", ylabel="observed fraction positive", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"Calibration, {len(y)} scored rows (quantile bins)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.predict",
        description="Score new patients with a bundle (python -m mmt_tune.fit), each by the model for the "
        "modalities it has; with labels, external-validation metrics with 95%% intervals.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_version(parser)
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle folder")
    parser.add_argument("--features", type=Path, required=True, help="table to score (.parquet or .csv)")
    parser.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed of the intervals")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune._io import atomic_path, write_text_atomic

    args = build_parser().parse_args(argv)
    try:
        from mmt_tune._io import check_writable

        check_writable(args.out.parent, "--out")
        bundle = load_bundle(args.bundle)
        table, metadata, labelled = read_table(args.features)
        notes = check_features(table, metadata, bundle, str(args.features))
        predictions = predict_table(bundle, table)
        scored = predictions["probability"].notna()
        if not scored.any():
            first = predictions["reason"].iloc[0]
            raise InputError(f"{args.features}: no row could be scored (row 1: {first})")
        report = validation(predictions, args.seed) if labelled else None
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    with atomic_path(args.out) as tmp:
        predictions.to_csv(tmp, index=False)
    used = predictions[scored].groupby(["model", "reads"]).size()
    print(f"scored {int(scored.sum())} of {len(predictions)} rows -> {args.out}")
    for (key, reads), count in used.items():
        print(f"  {count:>5} by {key} (reading {reads})")
    refused = predictions[~scored]
    for reason, count in refused.groupby("reason").size().items():
        print(f"  {count:>5} refused: {reason}")
    if report is not None:
        base = args.out.with_suffix("")
        write_text_atomic(f"{base}.metrics.json", json.dumps(report, indent=2) + "\n")
        calibration_plot(predictions, Path(f"{base}.calibration.png"))
        cells = ", ".join(
            f"{m} {report[m]['value']:.3f} [{report[m]['ci95'][0]:.3f}, {report[m]['ci95'][1]:.3f}]"
            for m in METRICS
        )
        print(f"external validation ({report['n']} rows, 95% bootstrap CI): {cells}")
        cal = report["calibration"]
        if cal["slope"] is not None:
            print(
                f"calibration: intercept {cal['intercept']:+.2f}, slope {cal['slope']:.2f}, Brier {report['brier']:.3f}"
            )
        print(f"wrote {base}.metrics.json, {base}.calibration.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
