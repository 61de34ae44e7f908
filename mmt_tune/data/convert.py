"""Import a radiomics table computed elsewhere into the feature-table contract.

``python -m mmt_tune.data.convert SRC --out features.parquet [--id ID] [--label Target] [--positive 1]
[--sequences T1,FLAIR] [--shared drop|MOD]``, or for PyRadiomics' batch output (one row per image/mask)
``... --sequence-column Sequence [--labels labels.csv]``

SRC is a wide CSV (optionally gzipped) or Parquet table with one row per patient: an identifier column, a
label column with two values, and feature columns whose names start with the MRI sequence they come from
(``T1_original_glcm_Contrast``), the layout of the radMLBench collection and of most shared radiomics tables.
Each becomes ``T1__original_glcm_Contrast``. The sequences are the prefixes given with ``--sequences``, or
every prefix that is not one of PyRadiomics' image types (``original``, ``wavelet``, ...). Columns without a
sequence prefix (e.g. shape features computed once on a shared mask) are dropped, or given to the sequence
named with ``--shared``; the command says which. Anything that does not fit is one line naming the file and
the column or row, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mmt_tune.cli import HelpFormatter, add_version
from mmt_tune.errors import InputError, describe
from mmt_tune.modalities import COLUMN_SEPARATOR, MAX_MODALITIES, MIN_MODALITIES, feature_column

#: Leading words of PyRadiomics feature names (image types): never a sequence prefix.
IMAGE_TYPES = {
    "original",
    "wavelet",
    "log",
    "square",
    "squareroot",
    "logarithm",
    "exponential",
    "gradient",
    "lbp",
    "diagnostics",
}


@dataclass
class Imported:
    table: pd.DataFrame  # the feature-table contract: patient_id, label (1 = positive), MOD__feature...
    sequences: tuple[str, ...]
    positive: str  # the source's label value that became 1
    dropped: list[str] = field(default_factory=list)  # shared columns left out
    shared_to: str | None = None  # or the sequence they were given to
    notes: list[str] = field(default_factory=list)  # what the import decided that a user should check


def read_source(path: Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV (``.csv``, ``.csv.gz``) or Parquet table; one line naming the file when it cannot be read.
    ``text_columns`` (identifiers) are read as written, so ``007`` stays ``007``."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={c: str for c in text_columns})
    except Exception as exc:  # parser errors come in many classes
        raise InputError(f"{path}: cannot read the table ({str(exc).splitlines()[0]})") from None


def import_wide_table(
    source: pd.DataFrame,
    where: str,
    id_column: str = "ID",
    label_column: str = "Target",
    positive: str | None = None,
    sequences: Sequence[str] | None = None,
    shared: str = "drop",
) -> Imported:
    """Turn a wide radiomics table into the feature-table contract (see the module docstring)."""
    for column in (id_column, label_column):
        if column not in source.columns:
            raise InputError(f"{where}: no column {column!r} (choose it with --id / --label)")
    features = [c for c in source.columns if c not in (id_column, label_column)]
    found = sequences is None
    if sequences is None:
        first = [c.split("_", 1)[0] for c in features if "_" in c]
        counts = pd.Series(first, dtype=object).value_counts()
        # an image type's prefix carries its filter after a dash: wavelet-LLH, log-sigma-1-0-mm-3D
        sequences = [
            p for p in dict.fromkeys(first) if p.split("-")[0].lower() not in IMAGE_TYPES and counts[p] > 1
        ]
    sequences = tuple(sequences)
    # a column's sequence: the longest sequence name it starts with (names may contain "_": T1_post)
    prefixes = {
        c: max((q for q in sequences if c.startswith(f"{q}_")), key=len, default=None) for c in features
    }
    if not MIN_MODALITIES <= len(sequences) <= MAX_MODALITIES:
        raise InputError(
            f"{where}: found {len(sequences)} sequence prefix(es) ({', '.join(sequences) or 'none'}); a study "
            f"takes {MIN_MODALITIES} to {MAX_MODALITIES} (name them with --sequences)"
        )
    if shared != "drop" and shared not in sequences:
        raise InputError(f"{where}: --shared {shared!r} is not one of the sequences ({', '.join(sequences)})")
    renamed, dropped = {}, []
    for column in features:
        prefix = prefixes[column]
        if prefix is not None:
            renamed[column] = feature_column(prefix, column[len(prefix) + 1 :])
        elif shared == "drop":
            dropped.append(column)
        else:
            renamed[column] = feature_column(shared, column)
    for sequence in sequences:
        if not any(name.startswith(f"{sequence}{COLUMN_SEPARATOR}") for name in renamed.values()):
            raise InputError(f"{where}: no feature column starts with {sequence}_")
    labels, positive = _labels(source, label_column, positive, where)
    ids = _identifiers(source[id_column], where, id_column)
    if ids.duplicated().any():
        raise InputError(f"{where}: {id_column} {ids[ids.duplicated()].iloc[0]!r} appears twice")
    table = pd.DataFrame({"patient_id": ids, "label": (labels.astype(str) == str(positive)).astype(int)})
    values_frame = source[list(renamed)].apply(pd.to_numeric, errors="coerce")
    bad = values_frame.isna() & source[list(renamed)].notna()
    if bad.any().any():
        column = bad.any().idxmax()
        row = int(np.flatnonzero(bad[column].to_numpy())[0])
        raise InputError(f"{where}: row {row + 2}: {column} is not a number ({source[column].iloc[row]!r})")
    values_frame.columns = list(renamed.values())
    table = pd.concat([table, values_frame.astype(float)], axis=1)
    notes = [*_sparse_prefixes(renamed, sequences), *_unfamiliar_prefixes(sequences)] if found else []
    return Imported(table, sequences, str(positive), dropped, None if shared == "drop" else shared, notes)


def _labels(
    source: pd.DataFrame, label_column: str, positive: str | None, where: str
) -> tuple[pd.Series, str]:
    """The label column as text with 0/1 in any numeric spelling made "0"/"1", and the positive value."""
    labels = source[label_column]
    values = list(dict.fromkeys(labels.dropna().astype(str)))
    if labels.isna().any():
        raise InputError(f"{where}: row {int(np.flatnonzero(labels.isna())[0]) + 2}: {label_column} is empty")
    if len(values) != 2:
        raise InputError(
            f"{where}: {label_column} has {len(values)} distinct values ({values[:5]}); need two"
        )
    numeric = _as_binary(values)
    if numeric is not None:  # 0/1 written as 0.0/1.0 (or 1/0 as numbers): the feature tables' convention
        labels = labels.astype(str).map(numeric)
        values = list(dict.fromkeys(labels))
    if positive is None:
        if set(values) != {"0", "1"}:
            raise InputError(
                f"{where}: {label_column} values {values}: say which is positive with --positive"
            )
        positive = "1"
    if str(positive) not in values:
        raise InputError(
            f"{where}: --positive {positive!r} is not a value of {label_column} ({', '.join(values)})"
        )
    return labels, str(positive)


def _as_binary(values: list[str]) -> dict[str, str] | None:
    """``{"1.0": "1", "0.0": "0"}`` when two label values are the numbers 0 and 1 written some other way."""
    try:
        numbers = {v: float(v) for v in values}
    except ValueError:
        return None
    if set(numbers.values()) != {0.0, 1.0}:
        return None
    return {v: str(int(n)) for v, n in numbers.items()}


def _identifiers(column: pd.Series, where: str, name: str) -> pd.Series:
    """Patient identifiers as text: an empty one is refused naming its row; whole numbers stored as floats
    (a numeric column with a blank elsewhere) lose their ``.0``."""
    empty = column.isna() | (column.astype(str).str.strip() == "")
    if empty.any():
        raise InputError(f"{where}: row {int(np.flatnonzero(empty.to_numpy())[0]) + 2}: {name} is empty")
    if pd.api.types.is_float_dtype(column) and (column % 1 == 0).all():
        column = column.astype(np.int64)
    return column.astype(str)


def _sparse_prefixes(renamed: dict[str, str], sequences: Sequence[str]) -> list[str]:
    """A note naming prefixes taken as sequences that have far fewer columns than the others (``clinical_age``
    and ``clinical_sex`` make a prefix too): check them, or name the sequences with --sequences."""
    counts = {s: sum(v.startswith(f"{s}{COLUMN_SEPARATOR}") for v in renamed.values()) for s in sequences}
    largest = max(counts.values())
    sparse = [f"{s} ({n} columns)" for s, n in counts.items() if n < 0.2 * largest]
    if not sparse:
        return []
    return [
        f"prefixes taken as sequences with far fewer columns than the largest ({largest}): {', '.join(sparse)}; "
        "if they are not MRI sequences, name the sequences with --sequences"
    ]


#: How MRI sequence names start (T1, T1Gd, T2w, FLAIR, DWI, ADC, ...; any case): a prefix found in the
#: column names that starts otherwise is named in a note (it may be clinical data or a mask name).
MRI_NAME = re.compile(
    r"^(t1|t2|flair|dwi|adc|swi|pd|dce|dsc|pwi|asl|dti|fa|md|mra|tof|stir|gre|epi|b\d)", re.I
)


def _unfamiliar_prefixes(sequences: Sequence[str]) -> list[str]:
    """A note naming prefixes taken as sequences that do not look like an MRI sequence's name."""
    odd = [s for s in sequences if not MRI_NAME.match(s)]
    if not odd:
        return []
    return [
        f"prefixes taken as sequences that are not MRI sequence names we know: {', '.join(odd)}; if they are "
        "not sequences, name the sequences with --sequences"
    ]


def import_long_table(
    source: pd.DataFrame,
    where: str,
    id_column: str,
    sequence_column: str,
    label_column: str | None,
    labels: dict[str, str] | None,
    positive: str | None,
) -> Imported:
    """PyRadiomics' batch output (one row per image/mask, the batch file's own columns passed through, then
    ``diagnostics_*`` and the features) -> one row per patient with ``<SEQUENCE>__<feature>`` columns."""
    for column in (id_column, sequence_column, *([label_column] if label_column else [])):
        if column not in source.columns:
            raise InputError(f"{where}: no column {column!r}")
    source = source.copy()
    source[id_column] = source[id_column].astype(str)
    source[sequence_column] = source[sequence_column].astype(str)
    duplicated = source.duplicated([id_column, sequence_column])
    if duplicated.any():
        row = source[duplicated].iloc[0]
        raise InputError(f"{where}: {row[id_column]!r} has two rows for {row[sequence_column]!r}")
    passthrough = {id_column, sequence_column, label_column, "Image", "Mask", "Label", "label"}
    features = [
        c
        for c in source.columns
        if c not in passthrough
        and not c.startswith("diagnostics_")
        and pd.api.types.is_numeric_dtype(source[c])
    ]
    if not features:
        raise InputError(
            f"{where}: no numeric feature column besides {id_column}, {sequence_column} and diagnostics"
        )
    sequences = tuple(dict.fromkeys(source[sequence_column]))
    for sequence in sequences:
        if COLUMN_SEPARATOR in sequence:
            raise InputError(f"{where}: sequence name {sequence!r} contains '{COLUMN_SEPARATOR}'")
    wide = source.pivot(index=id_column, columns=sequence_column, values=features)
    wide.columns = [feature_column(sequence, feature) for feature, sequence in wide.columns]
    ordered = [feature_column(q, f) for q in sequences for f in features]
    wide = wide[ordered].reset_index()
    if label_column:
        per_patient = source.groupby(id_column)[label_column].nunique()
        if (per_patient > 1).any():
            raise InputError(f"{where}: patient {per_patient[per_patient > 1].index[0]!r} has two labels")
        labels = source.groupby(id_column)[label_column].first().astype(str).to_dict()
    if not labels:
        raise InputError(f"{where}: give the labels with --label COLUMN or --labels labels.csv")
    unlabelled = [p for p in wide[id_column] if p not in labels]
    if unlabelled:
        raise InputError(f"{where}: patient {unlabelled[0]!r} has no label")
    wide.insert(1, "Target", [labels[p] for p in wide[id_column]])
    renamed = wide.rename(columns={f: f.replace(COLUMN_SEPARATOR, "_", 1) for f in ordered})
    return import_wide_table(renamed, where, id_column, "Target", positive, sequences)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.data.convert",
        description="Import a wide radiomics table (per-sequence column prefixes) as a feature table.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("source", type=Path, help="CSV (.csv, .csv.gz) or Parquet table, one row per patient")
    parser.add_argument("--out", type=Path, required=True, help="feature table to write (.parquet)")
    parser.add_argument("--id", default="ID", help="patient identifier column")
    parser.add_argument("--label", default="Target", help="label column (two values)")
    parser.add_argument(
        "--positive", default=None, help="the label value that is the positive class (default 1)"
    )
    parser.add_argument(
        "--sequences", default=None, help="comma-separated sequence prefixes (default: found from the names)"
    )
    parser.add_argument(
        "--shared",
        default="drop",
        help="columns without a sequence prefix: drop, or the sequence to give them",
    )
    parser.add_argument(
        "--sequence-column",
        default=None,
        help="PyRadiomics batch output (one row per image/mask): the column naming each row's sequence",
    )
    parser.add_argument(
        "--labels", type=Path, default=None, help="with --sequence-column: CSV of patient_id,label"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune._io import check_output_file
    from mmt_tune.data.table import validate_table, write_feature_table

    args = build_parser().parse_args(argv)
    try:
        check_output_file(args.out, "--out")
        source = read_source(args.source, text_columns=[args.id])
        if args.sequence_column:
            from mmt_tune.data.scan import read_labels

            labels = read_labels(args.labels) if args.labels else None
            label = args.label if args.label in source.columns else None
            result = import_long_table(
                source, str(args.source), args.id, args.sequence_column, label, labels, args.positive
            )
        else:
            sequences = [s for s in args.sequences.split(",") if s] if args.sequences else None
            result = import_wide_table(
                source, str(args.source), args.id, args.label, args.positive, sequences, args.shared
            )
        validate_table(result.table, str(args.source))
        metadata = {
            "modalities": list(result.sequences),
            "unit": "patient",
            "source": "imported",
            "positive_class": result.positive,
        }
        write_feature_table(result.table, args.out, metadata)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    table = result.table
    print(
        f"{len(table)} patients ({int(table['label'].sum())} positive: {args.label} = {result.positive}), "
        f"sequences {', '.join(result.sequences)} "
        f"({', '.join(str(sum(c.startswith(s + COLUMN_SEPARATOR) for c in table.columns)) for s in result.sequences)}"
        " features) -> " + str(args.out)
    )
    if result.dropped:
        print(
            f"note: {len(result.dropped)} columns without a sequence prefix were dropped (e.g. {result.dropped[0]})"
        )
    elif result.shared_to:
        print(f"note: columns without a sequence prefix were given to {result.shared_to}")
    for note in result.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
