#!/usr/bin/env bash
# Calibrate the demo's K_NV judge on the supplement's dev split, then validate it once on test
# (run from studies/labelled-replays/knv after build_set.py). Scores come from this study's
# cache (scores.jsonl: score.py); nothing is re-graded. Results: results/*.json (one JSON object
# per command, as `--json` prints it) and the shipped calibration replays-v1-knv.json.
set -euo pipefail
DS=../../../.venv/bin/deploysim
CAL=../../../src/deploysim/data/labels/calibrations/replays-v1-knv.json
SET=../../../src/deploysim/data/labels/replays-v1-knv.jsonl
J=llamacpp/qwen2.5-coder-1.5b
SPEC='judge/K_NV?max_chars=1200'
mkdir -p results
run() { local out=$1; shift; $DS graders validate "$@" --cache scores.jsonl --json > "results/$out.json"; }

run knv-dev-uncalibrated "$SPEC" --judge $J --labels $SET --split dev
rm -f $CAL
run knv-calibrate "$SPEC" --judge $J --labels $SET --split dev --calibrate youden \
  --calibration-out $CAL
run knv-test "$SPEC&calibration=replays-v1-knv" --judge $J --labels $SET --split test \
  --calibration-out $CAL

# The demo's K_NV grader keeps the judge's own threshold (0.5): Youden's 0.238 flags about two
# replies in three, and no threshold makes this judge useful. `fixed` ships its held-out
# validation with it, so the report shows K_NV as weak with its figures.
FIXED=../../../src/deploysim/data/labels/calibrations/replays-v1-knv-fixed.json
rm -f $FIXED
run knv-fixed-dev "$SPEC" --judge $J --labels $SET --split dev --calibrate fixed \
  --calibration-out $FIXED
run knv-fixed-test "$SPEC&calibration=replays-v1-knv-fixed" --judge $J --labels $SET \
  --split test --calibration-out $FIXED
