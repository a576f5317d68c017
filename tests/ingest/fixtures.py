"""Self-written log fixtures, one per reader, shaped like the real exports.

Every text here is written for these tests; only the structure (field names, nesting) follows
the source named above each fixture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def jsonl(path: Path, records: list[Any]) -> Path:
    """Write ``records`` as JSONL."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def document(path: Path, value: Any) -> Path:
    """Write one pretty-printed JSON document (as exporters do)."""
    path.write_text(json.dumps(value, indent=2))
    return path


# Structure: OpenAI Responses API reference (platform.openai.com/docs/api-reference/responses),
# openai-python types/responses/response_input_item_param.py.
RESPONSES = {
    "model": "gpt-x",
    "instructions": "You answer questions about the weather.",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Rain?"}]},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Need the forecast."}],
        },
        {
            "type": "function_call",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        },
        {"type": "function_call_output", "call_id": "call_a", "output": "light rain"},
    ],
    "output": [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Yes, light rain in Oslo."}],
        }
    ],
}

# Structure: Anthropic Messages API reference (docs.anthropic.com "Messages"),
# anthropic-sdk-python types/message_param.py; a gateway log of request + response.
ANTHROPIC = {
    "request": {
        "model": "claude-x",
        "system": "You are a shell helper.",
        "tools": [{"name": "run", "description": "Run a command", "input_schema": {}}],
        "messages": [
            {"role": "user", "content": "List the files."},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Use ls.", "signature": "sig1"},
                    {"type": "tool_use", "id": "toolu_1", "name": "run", "input": {"cmd": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt b.txt"},
                    {"type": "text", "text": "Which is bigger?"},
                ],
            },
        ],
    },
    "response": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "I cannot tell without sizes."}],
        "stop_reason": "end_turn",
    },
}


def _otlp_attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _otlp_span(trace: str, span: str, start: int, attrs: dict[str, Any], events: Any = ()) -> Any:
    return {
        "traceId": trace,
        "spanId": span,
        "name": "chat m",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 10),
        "attributes": [_otlp_attr(k, v) for k, v in attrs.items()],
        "events": [
            {"name": n, "timeUnixNano": str(start), "attributes": [_otlp_attr(k, v) for k, v in a]}
            for n, a in events
        ],
    }


def otel_export() -> dict[str, Any]:
    """An OTLP-JSON export (opentelemetry-proto trace/v1, JSON mapping) holding three GenAI
    layouts: the current attributes (semantic-conventions gen-ai-spans.md), the
    ``gen_ai.client.inference.operation.details`` event, and OpenLLMetry's indexed
    ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` attributes."""
    turn1_in = [{"role": "user", "parts": [{"type": "text", "content": "Book a table."}]}]
    turn1_out = [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "book", "arguments": {"n": 2}}],
            "finish_reason": "tool_call",
        }
    ]
    turn2_in = [
        *turn1_in,
        {"role": "assistant", "parts": turn1_out[0]["parts"]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "ok"}]},
    ]
    turn2_out = [{"role": "assistant", "parts": [{"type": "text", "content": "Booked."}]}]
    common = {"gen_ai.operation.name": "chat", "gen_ai.conversation.id": "conv-1"}
    spans = [
        _otlp_span(
            "t1",
            "s1",
            100,
            {
                **common,
                "gen_ai.request.model": "m",
                "gen_ai.system_instructions": json.dumps(
                    [{"type": "text", "content": "Be brief."}]
                ),
                "gen_ai.input.messages": json.dumps(turn1_in),
                "gen_ai.output.messages": json.dumps(turn1_out),
                "gen_ai.tool.definitions": json.dumps(
                    [{"type": "function", "name": "book", "parameters": {}}]
                ),
            },
        ),
        _otlp_span("t1", "s2", 200, {**common, "gen_ai.operation.name": "execute_tool"}),
        _otlp_span(
            "t2",
            "s3",
            300,
            common,
            [
                (
                    "gen_ai.client.inference.operation.details",
                    [
                        (
                            "gen_ai.system_instructions",
                            json.dumps([{"type": "text", "content": "Be brief."}]),
                        ),
                        ("gen_ai.input.messages", json.dumps(turn2_in)),
                        ("gen_ai.output.messages", json.dumps(turn2_out)),
                    ],
                )
            ],
        ),
        _otlp_span(
            "t3",
            "s4",
            400,
            {
                "gen_ai.system": "openai",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "What is 2+2?",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "4",
                "gen_ai.completion.0.finish_reason": "stop",
            },
        ),
    ]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_otlp_attr("service.name", "app")]},
                "scopeSpans": [{"scope": {"name": "genai"}, "spans": spans}],
            }
        ]
    }


def openinference_spans() -> list[dict[str, Any]]:
    """Phoenix-style span JSON (the SDK's ``span.to_json()`` layout with OpenInference dotted
    attributes, Arize-ai/openinference spec/semantic_conventions.md): two LLM calls of one
    session, the second extending the first."""
    first = {
        "openinference.span.kind": "LLM",
        "session.id": "sess-9",
        "llm.model_name": "m",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You convert units.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "3 miles in km?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "tc1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "convert",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"mi": 3}',
        "llm.tools.0.tool.json_schema": json.dumps(
            {"type": "function", "function": {"name": "convert", "parameters": {}}}
        ),
    }
    second = {
        k.replace("llm.output_messages.0", "llm.input_messages.2"): v
        for k, v in first.items()
        if not k.startswith("llm.tools")
    }
    second.update(
        {
            "llm.input_messages.3.message.role": "tool",
            "llm.input_messages.3.message.tool_call_id": "tc1",
            "llm.input_messages.3.message.content": "4.83",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "About 4.8 km.",
        }
    )
    chain = {"openinference.span.kind": "CHAIN", "input.value": "x"}
    return [
        {
            "name": name,
            "context": {"trace_id": f"0x{trace}", "span_id": f"0x{span}"},
            "parent_id": None,
            "start_time": start,
            "attributes": attrs,
            "events": [],
        }
        for name, trace, span, start, attrs in (
            ("ChatCompletion", "a1", "b1", "2025-01-01T00:00:01Z", first),
            ("chain", "a1", "b0", "2025-01-01T00:00:00Z", chain),
            ("ChatCompletion", "a2", "b2", "2025-01-01T00:01:00Z", second),
        )
    ]


# Structure: SWE-agent sweagent/types.py (AgentRunResult: trajectory, history, info).
SWE_AGENT = {
    "environment": "main",
    "trajectory": [{"action": "ls", "observation": "setup.py", "response": "", "thought": ""}],
    "history": [
        {
            "role": "system",
            "content": "You are an engineer.",
            "agent": "main",
            "message_type": "system_prompt",
        },
        {
            "role": "user",
            "content": "Fix the failing test.",
            "agent": "main",
            "message_type": "observation",
        },
        {
            "role": "assistant",
            "content": "Look around first.",
            "thought": "Look around first.",
            "action": "ls",
            "agent": "main",
            "message_type": "action",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "ls"}'},
                }
            ],
        },
        {
            "role": "tool",
            "content": "setup.py",
            "agent": "main",
            "message_type": "observation",
            "tool_call_ids": ["call_1"],
        },
    ],
    "info": {"exit_status": "submitted", "model_stats": {"api_calls": 1}},
}

# Structure: OpenHands openhands/events/serialization/event.py (event_to_dict) inside an
# evaluation output.jsonl line ({instance_id, instruction, history, metrics, error}).
OPENHANDS = {
    "instance_id": "repo__1",
    "instruction": "Make the tests pass.",
    "history": [
        {
            "id": 0,
            "source": "agent",
            "action": "system",
            "args": {"content": "You are a coder."},
            "message": "",
        },
        {
            "id": 1,
            "source": "user",
            "action": "message",
            "args": {"content": "Make the tests pass."},
            "message": "Make the tests pass.",
        },
        {
            "id": 2,
            "source": "agent",
            "action": "run",
            "args": {"command": "pytest", "thought": "Run them."},
            "message": "Running command: pytest",
            "tool_call_metadata": {
                "function_name": "execute_bash",
                "tool_call_id": "toolu_9",
                "model_response": {
                    "choices": [
                        {
                            "message": {
                                "tool_calls": [
                                    {
                                        "id": "toolu_9",
                                        "function": {
                                            "name": "execute_bash",
                                            "arguments": '{"command": "pytest"}',
                                        },
                                    }
                                ]
                            }
                        }
                    ]
                },
                "total_calls_in_response": 1,
            },
        },
        {
            "id": 3,
            "source": "agent",
            "observation": "run",
            "content": "1 passed",
            "extras": {"exit_code": 0},
            "cause": 2,
            "message": "",
            "tool_call_metadata": {"function_name": "execute_bash", "tool_call_id": "toolu_9"},
        },
        {
            "id": 4,
            "source": "environment",
            "observation": "agent_state_changed",
            "content": "",
            "extras": {},
        },
    ],
    "metrics": {},
    "error": None,
}

# Structure: Harbor ATIF (laude-institute/harbor harbor/models/trajectories; formats.md §1).
ATIF = {
    "schema_version": "ATIF-v1.2",
    "session_id": "sess-a",
    "agent": {"name": "agent-x", "version": "1"},
    "steps": [
        {"step_id": 1, "source": "user", "message": "Count the lines of notes.txt."},
        {
            "step_id": 2,
            "source": "agent",
            "message": "Counting.",
            "reasoning_content": "wc will do.",
            "tool_calls": [
                {
                    "tool_call_id": "t1",
                    "function_name": "shell",
                    "arguments": {"cmd": "wc -l notes.txt"},
                }
            ],
            "observation": {"results": [{"source_call_id": "t1", "content": "12 notes.txt"}]},
        },
        {"step_id": 3, "source": "agent", "message": "It has 12 lines."},
    ],
    "final_metrics": {"total_steps": 3},
}

# Structure: ToolBench data_example/answer/G1_answer/*.json (OpenBMB/ToolBench).
TOOLBENCH = {
    "win": True,
    "tree": {"size": 1},
    "forward_args": {"answer": 1},
    "answer_generation": {
        "valid_data": True,
        "final_answer": "",
        "finish_type": "give_answer",
        "function": [{"name": "lookup_zip", "description": "Find a zip code", "parameters": {}}],
        "chain": [],
        "train_messages": [
            [
                {"role": "system", "content": "You use tools."},
                {"role": "user", "content": "Zip code of the town hall?"},
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "lookup_zip", "arguments": "{}"},
                },
            ],
            [
                {"role": "system", "content": "You use tools."},
                {"role": "user", "content": "Zip code of the town hall?"},
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "lookup_zip", "arguments": "{}"},
                },
                {"role": "function", "name": "lookup_zip", "content": "12345"},
                {"role": "assistant", "content": "It is 12345."},
            ],
        ],
    },
}

# Structure: BFCL data files (ShishirPatil/gorilla berkeley-function-call-leaderboard/data):
# {id, question: [[messages]], function: [...]} per line.
BFCL = {
    "id": "simple_0",
    "question": [[{"role": "user", "content": "Area of a circle of radius 2?"}]],
    "function": [{"name": "circle_area", "description": "Area", "parameters": {}}],
}

# Structure: Langfuse public API (GET /api/public/traces/{id}: a trace with its observations).
LANGFUSE = {
    "id": "trace-1",
    "sessionId": "chat-7",
    "userId": "someone",
    "input": "Translate 'cat'.",
    "observations": [
        {
            "id": "obs-1",
            "traceId": "trace-1",
            "type": "GENERATION",
            "startTime": "2025-02-01T10:00:00Z",
            "model": "m",
            "input": [
                {"role": "system", "content": "You translate to French."},
                {"role": "user", "content": "Translate 'cat'."},
            ],
            "output": {"role": "assistant", "content": "chat"},
        },
        {"id": "obs-2", "traceId": "trace-1", "type": "SPAN", "startTime": "2025-02-01T10:00:00Z"},
    ],
}

# Structure: langsmith-sdk schemas.py Run, as client.list_runs exports it (LangChain
# serialised messages in inputs.messages, generations in outputs).
LANGSMITH = {
    "id": "run-1",
    "trace_id": "tr-1",
    "run_type": "llm",
    "name": "ChatModel",
    "start_time": "2025-03-01T00:00:00",
    "dotted_order": "20250301T000000000000Zrun-1",
    "extra": {"metadata": {"thread_id": "th-1"}},
    "inputs": {
        "messages": [
            [
                {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain", "schema", "messages", "SystemMessage"],
                    "kwargs": {"content": "You are terse."},
                },
                {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain", "schema", "messages", "HumanMessage"],
                    "kwargs": {"content": "Capital of Peru?"},
                },
            ]
        ]
    },
    "outputs": {
        "generations": [
            [
                {
                    "text": "Lima.",
                    "type": "ChatGeneration",
                    "message": {
                        "lc": 1,
                        "type": "constructor",
                        "id": ["langchain", "schema", "messages", "AIMessage"],
                        "kwargs": {"content": "Lima."},
                    },
                }
            ]
        ]
    },
}
