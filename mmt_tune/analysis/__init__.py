"""Study analysis: importance tables, aggregated metrics and figures (imports without torch or Ray).

Entry points: ``python -m analysis.importance`` (Table 3), ``python -m analysis.metrics`` (Table 2 and the
comparisons), ``python -m analysis.report`` (both, with figures and an index). Modules: :mod:`.results`
(results folder or trials table -> DataFrames), :mod:`.importance` (a package: engines, Table 3),
:mod:`.metrics` (Table 2, comparisons), :mod:`.plots`, :mod:`.tables` (writers), :mod:`.cli` (shared
command-line pieces), :mod:`.report`, :mod:`.synthetic` (tables with a known variance decomposition).
"""

__all__ = ["cli", "importance", "metrics", "plots", "report", "results", "synthetic", "tables"]
