"""tau-bench trajectories: a JSON array of ``{task_id, trial, reward, info, traj}``.

``traj`` is OpenAI chat messages (tool calls with JSON-string arguments, tool results with
``tool_call_id`` and ``name``). User turns are simulated by a model: such conversations are for
agentic tests, not production estimates, and are marked ``simulated_user``.
"""

from __future__ import annotations

from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import Found, require
from deploysim.ingest.openai import parse_messages
from deploysim.schema import Conversation, JSONValue


def convert(value: Any) -> list[Found]:
    """One trajectory."""
    traj = require(value, "traj", list)
    info = value.get("info") if isinstance(value.get("info"), dict) else {}
    if not traj:
        error = info.get("error") if isinstance(info, dict) else None
        raise RecordError(
            f"failed run with an empty 'traj'{f' (info.error: {error})' if error else ''}"
        )
    meta: dict[str, JSONValue] = {
        "task_id": value.get("task_id"),
        "trial": value.get("trial"),
        "reward": value.get("reward"),
        "simulated_user": True,
    }
    if isinstance(info.get("source"), str):
        meta["user_source"] = info["source"]
    source_id = f"task{value.get('task_id')}/trial{value.get('trial')}"
    return [Found(Conversation(messages=parse_messages(traj)), source_id, meta)]
