"""Real, public tables in the feature-table format, for checking models beyond the phantom.

``breast_cancer_table()`` is scikit-learn's Wisconsin diagnostic breast cancer data (569 patients, 30 nuclear
features, shipped with scikit-learn, so no download): the 10 ``mean`` features become modality T1WI, the 10
``error`` features FLAIR and the 10 ``worst`` features DWI. Malignant is the positive class (label 1, 212
patients), benign 0 (357): the majority-class accuracy is 0.627. The modality names are borrowed so the table
fits the paper's three-modality models; the "modalities" are feature groups of one image, not MRI sequences.
"""

from __future__ import annotations

import pandas as pd

from mmt_tune.modalities import feature_column

#: sklearn's feature-name suffix group -> the modality it stands in for.
BREAST_CANCER_GROUPS = {"mean": "T1WI", "error": "FLAIR", "worst": "DWI"}


def breast_cancer_table() -> pd.DataFrame:
    """569 rows: ``patient_id``, ``label`` (1 = malignant), then ``<MOD>__<feature>`` float columns."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    columns = {}
    for j, name in enumerate(data.feature_names):
        group = "mean" if name.startswith("mean ") else ("error" if name.endswith(" error") else "worst")
        stem = name.removeprefix("mean ").removeprefix("worst ").removesuffix(" error").replace(" ", "_")
        columns[feature_column(BREAST_CANCER_GROUPS[group], stem)] = data.data[:, j]
    table = pd.DataFrame(columns)
    table.insert(0, "label", (data.target == 0).astype(int))  # sklearn: 0 = malignant
    table.insert(0, "patient_id", [f"BC{i:04d}" for i in range(len(table))])
    return table
