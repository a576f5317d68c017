#!/usr/bin/env bash
# The open reproduction: run the backtest (resumable: run again to continue), then write the
# committed results (results/backtest.json and results/results.md).
# Usage: bash studies/backtest/run.sh [--size N]   (from a checkout set up by scripts/test.sh
# or scripts/demo.sh: it needs .venv with the local models)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
start=$(date +%s)
"$root/.venv/bin/deploysim" backtest "$here/backtest.toml" "$@"
"$root/.venv/bin/deploysim" backtest "$here/backtest.toml" "$@" --json > "$here/work/result.json"
"$root/.venv/bin/python" "$here/write_results.py" "$here/work/result.json" "$here/results" \
  --seconds $(( $(date +%s) - start )) --command "bash studies/backtest/run.sh $*"
