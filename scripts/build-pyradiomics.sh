#!/usr/bin/env bash
# Build and install PyRadiomics 3.1.0 (the latest release) into the given Python environment.
#
# Why this script exists: the 3.1.0 source archive on PyPI is broken in two ways (upstream issues
# AIM-Harvard/pyradiomics#828 and #932), and PyPI has no 3.1.0 wheels:
#   - its pyproject.toml declares version "3.0.1a1", so pip rejects it when resolving "pyradiomics==3.1.0";
#   - it lacks the C headers radiomics/src/cmatrices.h and cshape.h, so the C extensions do not compile.
# The C sources of 3.0.1 and 3.1.0 are identical and the 3.0.1 archive ships both headers, so we restore
# them from there, correct the declared version, and build without build isolation (the build imports
# numpy and versioneer from the target environment).
#
# Usage: scripts/build-pyradiomics.sh PYTHON
# Mirrors: set PYRADIOMICS_SDIST_URL to your PyPI mirror's URL of pyradiomics-3.1.0.tar.gz.
set -euo pipefail
py="${1:?usage: build-pyradiomics.sh PYTHON}"
url="${PYRADIOMICS_SDIST_URL:-https://files.pythonhosted.org/packages/03/c1/20fc2c50ab1e3304da36d866042a1905a2b05a1431ece35448ab6b4578f2/pyradiomics-3.1.0.tar.gz}"
sha256="24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip=("$py" -m pip --disable-pip-version-check)

"$py" - "$url" "$sha256" "$work/pyradiomics-3.1.0.tar.gz" <<'PY'
import hashlib, sys, urllib.request
url, want, dest = sys.argv[1:]
data = urllib.request.urlopen(url, timeout=120).read()
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"build-pyradiomics: {url}: sha256 {got} does not match the expected {want}")
open(dest, "wb").write(data)
PY
# 3.0.1 resolves normally; only its headers are used.
"${pip[@]}" download --quiet --no-deps --no-binary :all: --no-build-isolation "pyradiomics==3.0.1" -d "$work"

tar -xzf "$work/pyradiomics-3.1.0.tar.gz" -C "$work"
tar -xzf "$work/pyradiomics-3.0.1.tar.gz" -C "$work" pyradiomics-3.0.1/radiomics/src/cmatrices.h pyradiomics-3.0.1/radiomics/src/cshape.h
src="$work/pyradiomics-3.1.0"
cp "$work"/pyradiomics-3.0.1/radiomics/src/{cmatrices,cshape}.h "$src/radiomics/src/"
sed -i 's/^version = "3.0.1a1"$/version = "3.1.0"/' "$src/pyproject.toml"
"${pip[@]}" install --progress-bar off --no-build-isolation "$src"
"$py" -c "import radiomics, radiomics._cmatrices, radiomics._cshape; print('build-pyradiomics: installed PyRadiomics', radiomics.__version__)"
