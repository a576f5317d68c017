#!/usr/bin/env bash
# Validate and calibrate graders on the labelled set (run from studies/labelled-replays after
# build_set.py). Judge scores come from scores.jsonl (score.py); nothing is re-graded. Results:
# results/*.json (one JSON object per command, as `--json` prints it) and the calibrations in
# src/deploysim/data/labels/calibrations/.
set -euo pipefail
DS=../../.venv/bin/deploysim
SET=../../src/deploysim/data/labels/replays-v1.jsonl
CAL=../../src/deploysim/data/labels/calibrations
J=llamacpp/qwen2.5-coder-1.5b
MAP=full=1,partial=1,none=0
mkdir -p results "$CAL"
run() { local out=$1; shift; $DS graders validate "$@" --cache scores.jsonl --json > "results/$out.json"; }

# Rules: every item.
for split in dev test; do
  run "rule-refusal-$split" rule/refusal --labels $SET --label-map $MAP --split $split
  run "rule-profanity-$split" rule/profanity --labels $SET --split $split
done

# The judge: the items it scored (judged-refusal.jsonl, a subset written by subset.py).
SPEC='judge/REFUSAL?rule=refusal&max_chars=1200'
SUB=results/judged-refusal.jsonl
../../.venv/bin/python subset.py "$SPEC" $SET $SUB
run judge-refusal-dev-uncalibrated "$SPEC" --judge $J --labels $SUB --label-map $MAP --split dev
rm -f $CAL/replays-v1-refusal.json
run judge-refusal-calibrate "$SPEC" --judge $J --labels $SUB --label-map $MAP --split dev \
  --calibrate youden --calibration-out $CAL/replays-v1-refusal.json
run judge-refusal-test "$SPEC&calibration=replays-v1-refusal" --judge $J --labels $SUB \
  --label-map $MAP --split test --calibration-out $CAL/replays-v1-refusal.json
