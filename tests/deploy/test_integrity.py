"""A changed bundle is refused before anything is built: schema, recorded sha256 of every file and manifest
section, and array shapes against the manifest; each case one line from ``predict``, never a traceback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

MMT1M, MFNVAE, LOGREG = "mmt1m_T1WI", "mfnvae_T1WI+FLAIR+DWI", "logreg_DWI"


def manifest_edit(change):
    def tamper(folder):
        path = folder / "bundle.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return tamper


def entry(manifest, key="mmt1m/T1WI"):
    return manifest["configurations"][key]


def npz_edit(name, change):
    def tamper(folder):
        path = folder / name
        with np.load(path) as arrays:
            values = dict(arrays)
        change(values)
        np.savez(path, **values)

    return tamper


def weights_edit(change):
    def tamper(folder):
        import torch

        path = folder / MMT1M / "weights.pt"
        state = torch.load(path, weights_only=True)
        change(state)
        torch.save(state, path)

    return tamper


def swap(values, i, j):
    values[i], values[j] = values[j], values[i]


def copy_weights(folder):
    shutil.copy(folder / "mmt2m_T1WI+FLAIR" / "weights.pt", folder / MMT1M / "weights.pt")


def truncate_weights(folder):
    path = folder / MMT1M / "weights.pt"
    path.write_bytes(path.read_bytes()[:500])


def set_first_nan(state):
    name = next(iter(state))
    state[name] = state[name].clone().fill_(float("nan"))


# (case, tamper, message without resealing, message after the hashes are rewritten (None: undetectable))
CASES = [
    (
        "weights from another configuration",
        copy_weights,
        f"{MMT1M}/weights.pt: changed since fit",
        "weights.pt",
    ),
    (
        "widths narrower than the columns",
        manifest_edit(lambda m: entry(m)["widths"].update(T1WI=11)),
        "configurations.mmt1m/T1WI.widths changed since fit",
        r"columns\[0\].T1WI: 12 columns, wider than widths.T1WI",
    ),
    (
        "widths 1e15",
        manifest_edit(lambda m: entry(m)["widths"].update(T1WI=10**15)),
        "widths changed since fit",
        "widths.T1WI: 1000000000000000, expected 1 to 12",
    ),
    (
        "d_model edited",
        manifest_edit(lambda m: entry(m)["config"]["model_options"].update(d_model=8)),
        "configurations.mmt1m/T1WI.config changed since fit",
        "weights.pt .* has shape",
    ),
    (
        "member count edited",
        manifest_edit(lambda m: entry(m, "mfnvae/T1WI+FLAIR+DWI").update(members=1)),
        "members: 1, but columns lists 2 members",
        "members: 1, but columns lists 2 members",
    ),
    (
        "a shorter column list",
        manifest_edit(lambda m: entry(m)["columns"][0]["T1WI"].pop()),
        "configurations.mmt1m/T1WI.columns changed since fit",
        r"preprocessing.npz 0/T1WI/median has shape \(12,\), expected \(11,\)",
    ),
    (
        "a shorter median array",
        npz_edit(
            f"{MMT1M}/preprocessing.npz", lambda a: a.update({"0/T1WI/median": a["0/T1WI/median"][:-1]})
        ),
        f"{MMT1M}/preprocessing.npz: changed since fit",
        r"0/T1WI/median has shape \(11,\), expected \(12,\)",
    ),
    (
        "a zero scale",
        npz_edit(f"{MMT1M}/preprocessing.npz", lambda a: a["0/FLAIR/scale"].__setitem__(0, 0.0)),
        "preprocessing.npz: changed since fit",
        "0/FLAIR/scale holds a non-finite or zero value",
    ),
    (
        "a renamed column",
        manifest_edit(lambda m: entry(m)["columns"][0]["T1WI"].__setitem__(0, "T1WI__renamed")),
        "columns changed since fit",
        "'T1WI__renamed' is not a feature column of the bundle",
    ),
    (
        "two names swapped in a configuration's columns",
        manifest_edit(lambda m: swap(entry(m)["columns"][0]["T1WI"], 0, 1)),
        "configurations.mmt1m/T1WI.columns changed since fit",
        None,
    ),
    (
        "two names swapped in the feature columns",
        manifest_edit(lambda m: swap(m["feature_columns"]["DWI"], 0, 1)),
        "feature_columns changed since fit",
        None,
    ),
    (
        "configurations missing",
        manifest_edit(lambda m: m.pop("configurations")),
        "configurations is missing",
        ...,
    ),
    (
        "configurations null",
        manifest_edit(lambda m: m.update(configurations=None)),
        "configurations: expected an object, found null",
        ...,
    ),
    (
        "configurations a list",
        manifest_edit(lambda m: m.update(configurations=[1])),
        "configurations: expected an object, found list",
        ...,
    ),
    (
        "folder missing",
        manifest_edit(lambda m: entry(m).pop("folder")),
        "configurations.mmt1m/T1WI.folder is missing",
        ...,
    ),
    (
        "folder of another type",
        manifest_edit(lambda m: entry(m).update(folder=3)),
        "folder: expected a string, found int",
        ...,
    ),
    (
        "an unknown configuration key",
        manifest_edit(lambda m: entry(m)["config"].update(optimizer="sgd")),
        "config changed since fit",
        "config: not a configuration",
    ),
    ("the hash record removed", manifest_edit(lambda m: m.pop("sha256")), "sha256 is missing", ...),
    (
        "a file removed",
        lambda folder: (folder / MMT1M / "preprocessing.npz").unlink(),
        "preprocessing.npz: missing",
        "cannot load mmt1m/T1WI safely",
    ),
    ("weights truncated", truncate_weights, "weights.pt: changed since fit", "cannot load mmt1m/T1WI safely"),
    ("NaN weights", weights_edit(set_first_nan), "weights.pt: changed since fit", "holds a non-finite value"),
    (
        "logistic coefficients of another width",
        npz_edit(f"{LOGREG}/coefficients.npz", lambda a: a.update({"0/coef": a["0/coef"][:, :-1]})),
        "coefficients.npz: changed since fit",
        r"0/coef has shape \(1, 11\), expected \(1, 12\)",
    ),
    ("not a manifest", lambda f: (f / "bundle.json").write_text("[1, 2]"), "not a bundle manifest", ...),
]


def _reseal(folder):
    from mmt_tune.deploy.integrity import seal

    path = folder / "bundle.json"
    path.write_text(json.dumps(seal(json.loads(path.read_text()), folder)))


@pytest.fixture(scope="module")
def table_to_score(bundle_parts, tmp_path_factory):
    path = tmp_path_factory.mktemp("score") / "new.csv"
    bundle_parts[3].to_csv(path, index=False)
    return path


def _predict(folder, features, out, capsys):
    from mmt_tune.predict import main

    code = main(["--bundle", str(folder), "--features", str(features), "--out", str(out)])
    return code, capsys.readouterr()


# each case as changed, and again with its hashes rewritten where the change is not refused before them
RUNS = [(*c, False) for c in CASES] + [(*c, True) for c in CASES if c[3] is not ...]


@pytest.mark.parametrize(
    "case, tamper, plain, after_reseal, resealed",
    RUNS,
    ids=[f"{r[0]}{' (hashes rewritten)' if r[4] else ''}" for r in RUNS],
)
def test_a_changed_bundle_is_refused_with_one_line_naming_what_changed(
    bundle_parts, table_to_score, tmp_path, capsys, case, tamper, plain, after_reseal, resealed
):
    from mmt_tune.deploy.bundle import load_bundle
    from mmt_tune.errors import InputError

    folder = tmp_path / "bundle"
    shutil.copytree(bundle_parts[2], folder)
    load_bundle(folder)  # the untouched copy loads
    tamper(folder)
    expected = plain
    if resealed:
        _reseal(folder)
        expected = after_reseal
    out = tmp_path / "p.csv"
    if expected is None:  # the documented limit: resealed hashes hide a swap of names
        load_bundle(folder)
        return
    with pytest.raises(InputError, match=expected):
        load_bundle(folder)
    code, printed = _predict(folder, table_to_score, out, capsys)
    assert code == 2
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), printed.err
    assert "Traceback" not in printed.err + printed.out
    assert not out.exists() and list(tmp_path.glob("p.*")) == []


def test_the_recorded_hashes_cover_every_file_and_section(bundle_parts):
    manifest = json.loads((bundle_parts[2] / "bundle.json").read_text())
    files = {p.relative_to(bundle_parts[2]).as_posix() for p in bundle_parts[2].rglob("*") if p.is_file()}
    assert set(manifest["sha256"]["files"]) == files - {"bundle.json"}
    sections = manifest["sha256"]["sections"]
    for key, value in manifest["configurations"].items():
        for field in value:
            assert f"configurations.{key}.{field}" in sections
    assert {"modalities", "feature_columns", "versions", "format"} <= set(sections)
    assert pd.Series(list(sections.values())).str.fullmatch("[0-9a-f]{64}").all()
