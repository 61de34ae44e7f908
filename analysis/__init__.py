"""``python -m analysis.importance``, ``python -m analysis.metrics``, ``python -m analysis.report``: the
analysis commands under their original names. The code is :mod:`mmt_tune.analysis`; import it from there
(a folder named ``analysis`` in your working directory would shadow this package, never that one)."""

__all__: list[str] = []  # commands only: the Python API is mmt_tune.analysis
