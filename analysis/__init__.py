"""Study analysis: importance tables, aggregated metrics and figures (imports without torch or Ray).

Entry points: ``python -m analysis.importance`` (Table 3), ``python -m analysis.metrics`` (Table 2 and the
comparisons), ``python -m analysis.report`` (both, with figures and an index). Modules: :mod:`.results`
(results folder or trials table -> DataFrames), :mod:`._engines` (fANOVA maths), :mod:`.importance`,
:mod:`.metrics`, :mod:`.plots`, :mod:`.tables` (writers), :mod:`.report`, :mod:`.synthetic` (tables with a
known variance decomposition).
"""

__all__ = ["importance", "metrics", "plots", "report", "results", "synthetic", "tables"]
