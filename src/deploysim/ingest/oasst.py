"""OpenAssistant message trees: ``{message_tree_id, tree_state, prompt: Node}``.

Each root-to-leaf path is one conversation. Message ids are kept on every message so that
conversations sharing a prefix stay linked (and their shared messages are stored once). When a
path ends in an assistant reply, its sibling replies are kept as references labelled by rank.
Deleted nodes and nodes that failed review are skipped with their subtrees; ``user_id`` is
dropped.
"""

from __future__ import annotations

from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import Found, require
from deploysim.schema import Conversation, JSONValue, Message, Reference

_ROLE = {"prompter": "user", "assistant": "assistant"}
_KEEP = ("lang", "rank", "synthetic", "review_count")


def convert(value: Any) -> list[Found]:
    """One message tree: one conversation per root-to-leaf path."""
    tree_id = require(value, "message_tree_id", str)
    root = require(value, "prompt", dict)
    meta: dict[str, JSONValue] = {"message_tree_id": tree_id, "tree_state": value.get("tree_state")}
    found: list[Found] = []
    for path, siblings in _paths(root, ()):
        messages = tuple(_message(n) for n in path)
        references = tuple(
            Reference(label=f"rank {s.get('rank')}", message=_message(s)) for s in siblings
        )
        leaf = str(path[-1].get("message_id"))
        found.append(
            Found(
                Conversation(messages=messages, references=references),
                f"{tree_id}/{leaf}",
                meta | {"leaf_message_id": leaf},
            )
        )
    if not found:
        raise RecordError("tree has no usable messages (root deleted or failed review)")
    return found


def _usable(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and not node.get("deleted")
        and node.get("review_result") is not False
    )


def _paths(
    node: dict[str, Any], path: tuple[dict[str, Any], ...], siblings: tuple[Any, ...] = ()
) -> Any:
    """Yield (root-to-leaf path, the leaf's sibling assistant replies)."""
    if not _usable(node):
        return
    path = (*path, node)
    replies = [r for r in node.get("replies") or [] if _usable(r)]
    if not replies:
        yield path, siblings
        return
    for reply in replies:
        alternatives = ()
        if reply.get("role") == "assistant":
            alternatives = tuple(
                r for r in replies if r is not reply and r.get("role") == "assistant"
            )
        yield from _paths(reply, path, alternatives)


def _message(node: dict[str, Any]) -> Message:
    role = _ROLE.get(node.get("role", ""))
    if role is None:
        raise RecordError(f"message {node.get('message_id')} has unknown role {node.get('role')!r}")
    text = node.get("text")
    if not isinstance(text, str):
        raise RecordError(f"message {node.get('message_id')} has no text")
    return Message(
        role=role,
        content=text,
        id=str(node.get("message_id")),
        model=node.get("model_name") if isinstance(node.get("model_name"), str) else None,
        timestamp=node.get("created_date") if isinstance(node.get("created_date"), str) else None,
        metadata={k: node[k] for k in _KEEP if k in node},
    )
