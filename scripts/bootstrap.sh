#!/usr/bin/env bash
# Create (or reuse) the project's virtualenv and install mmt-tune into it, handling the known install traps:
#   1. torch is pinned (TORCH_SPEC) and installed first, so no later resolver pulls an unpinned torch
#      (on a CPU-only machine that would download several GB of CUDA wheels).
#   2. pyrfr (needed by fanova) only builds with SWIG 3.x and without build isolation.
#   3. pyradiomics 3.1.0's sdist on PyPI cannot be built as published (scripts/build-pyradiomics.sh repairs it).
# Idempotent: a stamp file records the hash of the inputs, so a second run with nothing changed takes ~1 s.
#
# Usage: scripts/bootstrap.sh   (venv in .venv, or $VENV; also installs the small test/lint tools)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

"$PYTHON" - <<'PY' || { echo "bootstrap: Python >= 3.10 is required (found $($PYTHON --version 2>&1))" >&2; exit 2; }
import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
# The swig 3.0.12 wheel installs its binary into the venv; the pyrfr build looks for it on PATH.
export PATH="$(cd "$VENV/bin" && pwd):$PATH"
pip=("$py" -m pip install --quiet --disable-pip-version-check --progress-bar off)

stamp="$VENV/.mmt-tune-bootstrap"
want="$(cat pyproject.toml scripts/bootstrap.sh scripts/build-pyradiomics.sh | sha256sum | cut -c1-16) $TORCH_SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" -c "import mmt_tune" 2>/dev/null; then
  echo "bootstrap: $VENV is up to date"
  exit 0
fi

has() { "$py" -c "import $1" 2>/dev/null; }

"${pip[@]}" --upgrade pip
"${pip[@]}" "$TORCH_SPEC"
# Build prerequisites for the two packages that cannot build in an isolated environment.
"${pip[@]}" "swig==3.0.12" setuptools wheel numpy versioneer
has pyrfr || "${pip[@]}" --no-build-isolation "pyrfr>=0.8,<0.10"
has radiomics || scripts/build-pyradiomics.sh "$py"

"${pip[@]}" -e ".[extract,fanova,dev]"

# The pinned torch must have survived the resolver.
"$py" - "$TORCH_SPEC" <<'PY'
import sys, torch
want = sys.argv[1].split("==")[-1]
if not torch.__version__.startswith(want):
    sys.exit(f"bootstrap: torch {torch.__version__} installed, expected {want}")
PY
echo "$want" > "$stamp"
echo "bootstrap: $VENV ready"
