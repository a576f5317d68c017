#!/usr/bin/env bash
# The main job on the embedded default: install, then `deploysim demo` (real logs, local models,
# no API keys). Ends by printing the path of the HTML report.
source "$(dirname "$0")/_venv.sh" local
.venv/bin/deploysim demo --out "${1:-deploysim-demo}"
