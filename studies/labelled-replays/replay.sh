#!/usr/bin/env bash
# Replays for the labelled set (run from studies/labelled-replays; resumable). One thread per
# model: on this shared 2-core machine llama.cpp's two threads spin against each other's load.
set -euo pipefail
DS=../../.venv/bin/deploysim
S=work/replays.db
model=$1; shift
# SYSTEM (environment): a system prompt, for a release that differs by its prompt (export_items.py
# names it): e.g. SYSTEM="$(cat cautious.txt)" ./replay.sh llamacpp/qwen2.5-coder-0.5b lab-chat
for sample in "$@"; do
  $DS replay --store $S --sample "$sample" --model "$model?n_threads=1" --max-tokens 96 \
    --temperature 0 --concurrency 1 ${SYSTEM:+--system-prompt "$SYSTEM"} --json
done
