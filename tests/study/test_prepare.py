"""One study name for the folder, the trials table, the report and W&B: --name, else the space file's stem."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import make_table

from mmt_tune.data.table import write_feature_table
from mmt_tune.study.options import StudyOptions
from mmt_tune.study.prepare import prepare_study


def test_the_study_is_named_by_name_then_the_space_files_stem_then_the_space(tmp_path):
    import mmt_tune

    features = tmp_path / "t.parquet"
    write_feature_table(make_table(40), features, {})
    shipped = Path(mmt_tune.__file__).parent / "search_spaces" / "mmt1m.yaml"
    copied = tmp_path / "my-space.yaml"  # a copy whose name: still says mmt1m
    shutil.copy(shipped, copied)
    for space, name, expected in (
        (copied, None, "my-space"),
        (copied, "mening", "mening"),
        ("mmt1m", None, "mmt1m"),
    ):
        prepared = prepare_study(space, features, StudyOptions(storage=tmp_path / "results", name=name))
        assert prepared.space.name == expected  # the name the trials table, report heading and W&B group use
        assert prepared.where.tables == (tmp_path / "results" / expected).resolve()
        assert prepared.identity["space"] == expected


def test_a_space_over_other_sequences_takes_the_tables_sequences_unless_it_declares_its_own(tmp_path):
    from mmt_tune.study.guards import study_space

    text = (
        "configurations:\n  - {model: mfnvae, present: [T1, FLAIR]}\n"
        "parameters:\n  lr: {distribution: loguniform, low: 1.0e-5, high: 1.0e-3}\n"
    )
    (tmp_path / "a.yaml").write_text(text)
    assert study_space(tmp_path / "a.yaml", ["T1", "T2", "FLAIR"], "t").modalities == ("T1", "T2", "FLAIR")
    (tmp_path / "b.yaml").write_text("modalities: [T1, FLAIR]\n" + text)
    assert study_space(tmp_path / "b.yaml", ["T1", "T2", "FLAIR"], "t").modalities == ("T1", "FLAIR")
