#!/usr/bin/env bash
# One command: set up .venv (idempotent) and run the whole test suite, slow end-to-end tests included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"` for the quick loop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# Real Ray, PyRadiomics and wandb run inside the tests; keep them local and quiet.
export RAY_USAGE_STATS_ENABLED=0 WANDB_MODE=offline WANDB_SILENT=true
exec .venv/bin/python -m pytest --timeout 900 "$@"
