"""Radiomics feature extraction, and its settings files (``fast.yaml``, ``paper.yaml``).

- :mod:`.settings`: PyRadiomics settings (shipped or a user's YAML), validated by PyRadiomics' schema;
- :mod:`.worker`: one (case, modality) scan in a Ray worker, with the checks that name a bad file;
- :mod:`.cache`: the content-addressed per-scan feature cache;
- :mod:`.extract`: the driver, :func:`~mmt_tune.radiomics.extract.extract_features` (Ray tasks, resume,
  ``failures.csv``, the feature table);
- :mod:`.cli`: ``python -m mmt_tune.extract``.
"""

__all__ = ["cache", "cli", "extract", "settings", "worker"]
