"""Readers of the values SDK calls take and return, as SDK models or plain dicts.

Apps pass both in message lists, and other instrumentations record the same shapes as JSON,
so the OpenAI and LiteLLM wrappers and the normalizer of other instrumentations' spans read
them with these functions: one reading of a message, a response format or a tool choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from frictionlens import semconv


def get(obj: Any, key: str, default: Any = None) -> Any:
    """Read a field from an SDK model or a plain dict (apps pass both in message lists).

    Hot path (every chunk of every stream): plain dicts and the fields SDK models keep in
    ``__dict__`` are read directly; ``isinstance(x, typing.Mapping)`` and a missing
    attribute of a pydantic model (which raises inside ``getattr``) are slow."""
    if obj is None:
        return default
    if type(obj) is dict:
        return obj.get(key, default)
    fields = getattr(obj, "__dict__", None)
    if fields is not None and key in fields:
        return fields[key]
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def fields(obj: Any, keys: frozenset[str]) -> Mapping[str, Any]:
    """``keys`` of ``obj`` as ``get`` reads them, in one mapping to read several from.

    Hot path (each stream chunk): a plain dict, or an SDK model keeping all of ``keys`` in its
    ``__dict__``, is returned as it is, so each read is one ``dict.get``; anything else is read
    key by key with ``get``. Read only."""
    if type(obj) is dict:
        return obj
    own = getattr(obj, "__dict__", None)
    if own is not None and own.keys() >= keys:
        return own
    return {key: get(obj, key) for key in keys}


def given(value: Any) -> bool:
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


def numeric_params(kwargs: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """GenAI request attributes for the numeric parameters the app passed (booleans excluded)."""
    out: dict[str, Any] = {}
    for key, attr in names.items():
        value = kwargs.get(key)
        if given(value) and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[attr] = value
    return out


#: request keyword -> GenAI attribute, for the numeric sampling parameters
REQUEST_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "seed": semconv.GEN_AI_REQUEST_SEED,
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "max_output_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
}


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(part, str):
            parts.append(part)
            continue
        text = get(part, "text")
        if text is None:
            text = get(part, "refusal")
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)


def message_text(msg: Any) -> tuple[str, str]:
    role = str(get(msg, "role") or get(msg, "type") or "user")
    text = content_text(get(msg, "content"))
    calls = get(msg, "tool_calls") or ()
    if calls:
        text += "".join(
            f"\n{get(get(c, 'function'), 'name')}({get(get(c, 'function'), 'arguments')})"
            for c in calls
        )
    if role == "function_call":  # responses API input item
        text = f"{get(msg, 'name')}({get(msg, 'arguments')})"
    elif role == "function_call_output":
        role, text = "tool", str(get(msg, "output") or "")
    return role, text


@lru_cache(maxsize=256)
def pydantic_schema(model_type: type) -> Mapping[str, Any] | None:
    try:
        return model_type.model_json_schema()  # type: ignore[attr-defined]
    except Exception:
        return None


def format_request(fmt: Any) -> tuple[str, Mapping[str, Any] | None]:
    """(expected format, schema) from chat ``response_format`` or responses ``text.format``."""
    if isinstance(fmt, type):
        return semconv.FORMAT_JSON_SCHEMA, pydantic_schema(fmt)
    kind = get(fmt, "type")
    if kind == "json_object":
        return semconv.FORMAT_JSON, None
    if kind == "json_schema":
        schema = get(fmt, "schema") or get(get(fmt, "json_schema"), "schema")
        return semconv.FORMAT_JSON_SCHEMA, schema if isinstance(schema, Mapping) else None
    return semconv.FORMAT_TEXT, None


def tools_forced(kwargs: Mapping[str, Any]) -> bool:
    choice = kwargs.get("tool_choice")
    if not given(kwargs.get("tools")) or not given(choice):
        return False
    return choice == "required" or isinstance(choice, Mapping)
