#!/usr/bin/env bash
# Validate and calibrate graders on the labelled set (run from studies/labelled-replays after
# build_set.py). Judge scores come from the score cache (scores.jsonl: score.py, alone.py,
# combine.py); nothing is re-graded. Results: results/*.json (one JSON object per command, as
# `--json` prints it) and the calibrations in src/deploysim/data/labels/calibrations/.
#
# Session 9 order: python alone.py; python score.py 'judge/REFUSAL?max_chars=1200' work/items.jsonl
# (the items no judge had scored); python combine.py 'judge/REFUSAL?rule=refusal&max_chars=1200';
# python score.py 'judge/FAB?max_chars=1200' work/items.jsonl; then this script.
set -euo pipefail
DS=../../.venv/bin/deploysim
PY=../../.venv/bin/python
CAL=../../src/deploysim/data/labels/calibrations
J=llamacpp/qwen2.5-coder-1.5b
MAP=full=1,partial=1,none=0
# The labels with the texts the judge saw (de-identified prefixes; see judged_set.py).
SET=work/judged-set.jsonl
$PY judged_set.py work/items.jsonl $SET
mkdir -p results "$CAL"
run() { local out=$1; shift; $DS graders validate "$@" --cache scores.jsonl --json > "results/$out.json"; }

for split in dev test; do
  run "rule-refusal-$split" rule/refusal --labels $SET --label-map $MAP --split $split
  run "rule-profanity-$split" rule/profanity --labels $SET --split $split
done

# REFUSAL: the rule settles what it flags, the judge scores the rest; the threshold is chosen on
# dev (precision90), then the test split is read.
SPEC='judge/REFUSAL?rule=refusal&max_chars=1200'
run judge-refusal-dev-uncalibrated "$SPEC" --judge $J --labels $SET --label-map $MAP --split dev
rm -f $CAL/replays-v1-refusal.json
run judge-refusal-calibrate "$SPEC" --judge $J --labels $SET --label-map $MAP --split dev \
  --calibrate precision90 --calibration-out $CAL/replays-v1-refusal.json
run judge-refusal-test "$SPEC&calibration=replays-v1-refusal" --judge $J --labels $SET \
  --label-map $MAP --split test --calibration-out $CAL/replays-v1-refusal.json

# PROFANITY: the rule's threshold chosen on dev (1 positive) and read on test (3): too few
# positives to call it validated (the report marks it weak), but it is measured.
rm -f $CAL/replays-v1-profanity.json
run rule-profanity-calibrate rule/profanity --labels $SET --split dev \
  --calibrate youden --calibration-out $CAL/replays-v1-profanity.json
run rule-profanity-calibrated-test 'rule/profanity?calibration=replays-v1-profanity' --labels $SET \
  --split test --calibration-out $CAL/replays-v1-profanity.json

# FAB: the judge alone, Youden's threshold on dev, then the test split.
FAB='judge/FAB?max_chars=1200'
run judge-fab-dev-uncalibrated "$FAB" --judge $J --labels $SET --split dev
rm -f $CAL/replays-v1-fab.json
run judge-fab-calibrate "$FAB" --judge $J --labels $SET --split dev \
  --calibrate youden --calibration-out $CAL/replays-v1-fab.json
run judge-fab-test "$FAB&calibration=replays-v1-fab" --judge $J --labels $SET --split test \
  --calibration-out $CAL/replays-v1-fab.json
