"""The default behaviour: a plausible, deterministic answer to any request.

It reads the request the way a model would: it calls a tool when tools are offered and the
conversation does not end with a tool result, answers in JSON when a JSON mode or schema is
requested (honouring the schema's keys and types), and stops at the request's token limit
(``finish_reason`` length) so truncation is reproducible without scripting.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from frictionlens.localserver.reply import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    MESSAGES_PATH,
    RESPONSES_PATH,
    ReceivedRequest,
    Reply,
)

CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """The usual rule of thumb (about 4 characters a token), never below 1."""
    return max(1, (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


def default_responder(request: ReceivedRequest) -> Reply:
    """Answer ``request`` as a well-behaved model would; see the module docstring."""
    body = request.json
    if request.path not in (CHAT_PATH, COMPLETIONS_PATH, RESPONSES_PATH, MESSAGES_PATH):
        return Reply()
    tool, after_tool = _chosen_tool(request), _ends_with_tool_result(request)
    if tool is not None and not after_tool:
        name, schema = tool
        return Reply(tool_calls=[(name, json.dumps(example_for_schema(schema)))])
    text = answer_text(last_user_text(request), after_tool=after_tool)
    output_format = _requested_format(request)
    if output_format == "json_object":
        text = json.dumps({"answer": text})
    elif isinstance(output_format, dict):
        text = json.dumps(example_for_schema(output_format))
    limit = _max_tokens(body)
    finish = None
    if limit is not None and estimate_tokens(len(text)) > limit:
        text, finish = text[: limit * CHARS_PER_TOKEN], "length"
    n = body.get("n") if request.path in (CHAT_PATH, COMPLETIONS_PATH) else None
    if isinstance(n, int) and n > 1 and output_format is None:
        return Reply(content=[f"{text} (take {i + 1})" for i in range(n)], finish_reason=finish)
    return Reply(content=text, finish_reason=finish)


def answer_text(question: str, *, after_tool: bool = False) -> str:
    """A short answer that depends only on the question (no filler, no refusal phrasing)."""
    topic = " ".join(question.split()[:8]) or "your message"
    ref = zlib.crc32(question.encode("utf-8", "surrogatepass")) % 1000
    suffix = ", from the tool result" if after_tool else ""
    return f"Short answer on {topic!r}{suffix}: reference {ref}."


def last_user_text(request: ReceivedRequest) -> str:
    """The text of the last user turn (or the prompt) in any request format ('' if none)."""
    body = request.json
    if request.path == COMPLETIONS_PATH:
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else ""
    if request.path == RESPONSES_PATH:
        items = body.get("input")
        if isinstance(items, str):
            return items
        messages = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    else:
        raw = body.get("messages")
        messages = [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _ends_with_tool_result(request: ReceivedRequest) -> bool:
    body = request.json
    if request.path == RESPONSES_PATH:
        items = body.get("input")
        return (
            isinstance(items, list)
            and bool(items)
            and isinstance(items[-1], dict)
            and (items[-1].get("type") == "function_call_output")
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return False
    last = messages[-1]
    if request.path == CHAT_PATH:
        return last.get("role") == "tool"
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def _chosen_tool(request: ReceivedRequest) -> tuple[str, dict[str, Any]] | None:
    """The (name, parameter schema) the model would call, or None when it answers in text."""
    body = request.json
    tools: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        if request.path == CHAT_PATH:
            function = tool.get("function")
            spec = (
                (function.get("name"), function.get("parameters"))
                if isinstance(function, dict)
                else (None, None)
            )
        elif request.path == RESPONSES_PATH:
            spec = (
                (tool.get("name"), tool.get("parameters"))
                if tool.get("type") == "function"
                else (None, None)
            )
        else:
            spec = (tool.get("name"), tool.get("input_schema"))
        if isinstance(spec[0], str):
            tools[spec[0]] = spec[1] if isinstance(spec[1], dict) else {"type": "object"}
    if not tools:
        return None
    choice = body.get("tool_choice")
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if isinstance(name, str) and name in tools:
            return name, tools[name]
    name = next(iter(tools))
    return name, tools[name]


def _requested_format(request: ReceivedRequest) -> str | dict[str, Any] | None:
    """``json_object``, the JSON schema asked for, or None for free text."""
    body = request.json
    if request.path == CHAT_PATH:
        spec = body.get("response_format")
        schema_holder = spec.get("json_schema") if isinstance(spec, dict) else None
    elif request.path == RESPONSES_PATH:
        text = body.get("text")
        spec = text.get("format") if isinstance(text, dict) else None
        schema_holder = spec
    else:
        config = body.get("output_config")
        spec = config.get("format") if isinstance(config, dict) else None
        schema_holder = spec
    if not isinstance(spec, dict):
        return None
    if spec.get("type") == "json_object":
        return "json_object"
    if spec.get("type") == "json_schema" and isinstance(schema_holder, dict):
        schema = schema_holder.get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    return None


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def example_for_schema(
    schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0
) -> Any:
    """A small value that validates against ``schema`` (objects get every listed property)."""
    root = schema if root is None else root
    if depth > 12:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example_for_schema(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [
            o for o in schema.get(key) or () if isinstance(o, dict) and o.get("type") != "null"
        ]
        if options:
            return example_for_schema(options[0], root, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        names = list(properties) + [r for r in schema.get("required") or () if r not in properties]
        return {n: example_for_schema(properties.get(n) or {}, root, depth + 1) for n in names}
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        count = max(1, int(schema.get("minItems") or 0))
        return [example_for_schema(items, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", schema.get("exclusiveMinimum", 0)), schema.get("maximum")
        value: float = max(1, int(low) + 1) if isinstance(low, (int, float)) else 1
        if kind == "number":
            value += 0.5
        return min(value, high) if isinstance(high, (int, float)) else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {
        "date-time": "2024-01-01T00:00:00Z",
        "date": "2024-01-01",
        "email": "user@example.com",
    }.get(str(schema.get("format")), "example")
