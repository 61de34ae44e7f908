"""A random forest in a bundle: saved in skops' format, loaded with an allow-list, checked against the
manifest, and scoring exactly as fitted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_table

MODS = ("T1WI", "FLAIR", "DWI")


class Gadget:
    """A type no forest needs: a skops file asking for it is refused before it is built."""

    def __init__(self) -> None:
        self.built = True


@pytest.fixture(scope="module")
def forest_bundle(tmp_path_factory):
    from mmt_tune.config import TrainConfig
    from mmt_tune.deploy.bundle import Bundle, save_bundle
    from mmt_tune.training.refit import fit_configuration

    table = make_table(120, signal={"DWI": 1.2})
    config = TrainConfig.from_options("forest", ("DWI", "T1WI"), {"n_estimators": 20})
    fitted, _ = fit_configuration(table, config, np.arange(90), members=2)
    info = {
        "modalities": list(MODS),
        "feature_columns": {m: [c for c in table.columns if c.startswith(f"{m}__")] for m in MODS},
    }
    folder = tmp_path_factory.mktemp("b") / "bundle"
    save_bundle(Bundle({fitted.key: fitted}, info, {fitted.key: 0.7}), folder)
    return fitted, folder, table.iloc[90:]


def _reseal(folder):
    from mmt_tune.deploy.integrity import seal

    path = folder / "bundle.json"
    path.write_text(json.dumps(seal(json.loads(path.read_text()), folder)))


def test_a_forest_round_trips_and_scores_exactly_as_fitted(forest_bundle):
    from mmt_tune.deploy.bundle import load_bundle, savable

    fitted, folder, new = forest_bundle
    assert savable(fitted) and (folder / "forest_T1WI+DWI" / "forest.skops").is_file()
    loaded = load_bundle(folder).configurations[fitted.key]
    assert np.array_equal(loaded.predict(new), fitted.predict(new))


def test_a_forest_file_asking_for_other_types_is_refused_before_anything_is_built(forest_bundle, tmp_path):
    import shutil

    import skops.io

    from mmt_tune.deploy.bundle import load_bundle
    from mmt_tune.errors import InputError

    _, folder, _ = forest_bundle
    evil = tmp_path / "evil"
    shutil.copytree(folder, evil)
    skops.io.dump([Gadget(), Gadget()], evil / "forest_T1WI+DWI" / "forest.skops")
    with pytest.raises(InputError, match="forest.skops: changed since fit"):
        load_bundle(evil)
    _reseal(evil)  # the hashes rewritten too: the allow-list still refuses it
    with pytest.raises(InputError, match=r"asks to build types that a forest does not need \(.*Gadget\)"):
        load_bundle(evil)


def test_a_forest_of_another_width_is_refused(forest_bundle, tmp_path):
    import shutil

    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    from mmt_tune.deploy.bundle import load_bundle
    from mmt_tune.errors import InputError

    _, folder, _ = forest_bundle
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    rng = np.random.default_rng(0)
    narrow = [
        RandomForestClassifier(n_estimators=3).fit(rng.normal(size=(20, 5)), np.arange(20) % 2)
        for _ in range(2)
    ]
    skops.io.dump(narrow, other / "forest_T1WI+DWI" / "forest.skops")
    _reseal(other)
    with pytest.raises(InputError, match="member 0 reads 5 features of classes"):
        load_bundle(other)


def test_the_forest_file_holds_no_patient_identifier_or_path(forest_bundle):
    import zipfile

    _, folder, new = forest_bundle
    with zipfile.ZipFile(folder / "forest_T1WI+DWI" / "forest.skops") as archive:
        content = b"".join(archive.read(name) for name in archive.namelist())
    assert str(folder.parent).encode() not in content
    assert not any(p.encode() in content for p in new["patient_id"])
