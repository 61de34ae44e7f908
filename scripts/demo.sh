#!/usr/bin/env bash
# One command: set up .venv (idempotent) and run the demo on the phantom cohort. Extra arguments go to
# `python -m mmt_tune.demo` (see --help), e.g. `bash scripts/demo.sh --patients 60`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m mmt_tune.demo "$@"
