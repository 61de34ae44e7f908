"""Study analysis: importance tables, aggregated metrics and figures (imports without torch or Ray)."""
