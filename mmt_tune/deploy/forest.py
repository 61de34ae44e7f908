"""A random forest in a bundle, without pickle: skops' format (``forest.skops``), loaded with an allow-list.

skops stores a scikit-learn estimator as a zip of JSON and arrays and, on loading, builds only the types it
is told to trust. Its own defaults trust scikit-learn's estimators; beyond them a forest needs exactly one
type, the fitted tree (:data:`TRUSTED`). A file asking for any other type is refused naming it, before
anything is built; so is a forest whose classes or input width disagree with the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmt_tune.errors import InputError

FILE = "forest.skops"
#: The types a bundled forest may need beyond skops' own trusted defaults.
TRUSTED = ["sklearn.tree._tree.Tree"]


def save_forests(estimators: list[Any], folder: Path) -> None:
    import skops.io

    skops.io.dump(list(estimators), folder / FILE)


def load_forests(folder: Path, entry: dict, where: str) -> list[Any]:
    """The members' forests from ``folder``, each checked against the manifest (classes [0, 1], one input
    per column of its member)."""
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    path = folder / FILE
    untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in TRUSTED]
    if untrusted:
        raise InputError(f"{path}: asks to build types that a forest does not need ({', '.join(untrusted)})")
    forests = skops.io.load(path, trusted=TRUSTED)
    if not isinstance(forests, list) or len(forests) != entry["members"]:
        raise InputError(f"{path}: expected {entry['members']} forests (one per member)")
    for i, (forest, member) in enumerate(zip(forests, entry["columns"], strict=True)):
        width = sum(len(columns) for columns in member.values())
        if not isinstance(forest, RandomForestClassifier):
            raise InputError(f"{where}: {FILE} member {i} is a {type(forest).__name__}, not a random forest")
        if list(forest.classes_) != [0, 1] or forest.n_features_in_ != width:
            raise InputError(
                f"{where}: {FILE} member {i} reads {forest.n_features_in_} features of classes "
                f"{list(forest.classes_)}, expected {width} of [0, 1]"
            )
    return forests
