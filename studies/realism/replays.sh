#!/usr/bin/env bash
# Session 12's realism measurement on tau-bench (issue 20, done-when 3): local candidate and
# simulator (Qwen2.5-Coder-0.5B, one thread each), the simulator seeing the log vs blind, then
# `deploysim realism` with the consistency discriminators. Scratch stores outside the repository
# (they copy the data). Usage: studies/realism/replays.sh DIR [replay|realism]
set -euo pipefail
dir=${1:?scratch directory}; step=${2:-replay}
root=$(cd "$(dirname "$0")/../.." && pwd)
D="$root/.venv/bin/deploysim"
C='llamacpp/qwen2.5-coder-0.5b?n_threads=1&n_ctx=8192'  # own context: keeps its prompt cache
S='llamacpp/qwen2.5-coder-0.5b?n_threads=1'
opts=(--tools replay --simulator "$S" --concurrency 1 --max-steps 2 --max-tokens 256 --timeout 600)
mkdir -p "$dir"; cd "$dir"
if [ "$step" = replay ]; then
  if [ ! -f r.db ]; then
    "$D" ingest /work/shared/data/agentic/tau-bench-airline-gpt4o.tasks00-24.json --store r.db
    "$D" sample --store r.db --size 60 --mode turn --seed 1
    # Prefixes whose conversation ends at the cut have no logged continuation to compare with:
    # dropped from this scratch sample so no replay time goes to them (9 of 60).
    "$root/.venv/bin/python" - <<'PY'
from deploysim.prefixes import load_prefix
from deploysim.store import Store
with Store("r.db") as st:
    ids = [r[0] for r in st.db.execute("SELECT id FROM prefixes")]
    empty = [i for i in ids if not load_prefix(st, i).continuation]
    st.db.executemany("DELETE FROM prefixes WHERE id = ?", [(i,) for i in empty])
    st.db.commit()
PY
    cp r.db r_blind.db
  fi
  nice -n 10 "$D" replay --store r.db --model "$C" "${opts[@]}" --json > seeslog.json &
  nice -n 10 "$D" replay --store r_blind.db --model "$C" "${opts[@]}" --simulator-blind --json > blind.json &
  wait
else
  for db in r.db r_blind.db; do
    spec=$(sqlite3 "$db" "SELECT hash FROM replay_specs WHERE spec LIKE '%\"max_steps\":2%'")
    for disc in consistency consistency-tools; do
      "$D" realism --store "$db" --model "$C" --spec "$spec" --discriminator "$disc" --json \
        > "realism-${db%.db}-$disc.json"
      "$D" realism --store "$db" --model "$C" --discriminator "$disc" --controls --json \
        > "controls-${db%.db}-$disc.json"
    done
  done
fi
