#!/usr/bin/env bash
# The main job on the embedded default: install, then `deploysim demo` (real logs, no API keys).
source "$(dirname "$0")/_venv.sh"
.venv/bin/deploysim demo --out "${1:-deploysim-demo}"
