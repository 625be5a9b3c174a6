"""Does the output honour the format the request asked for? Structural checks, O(length).

Shared by every provider: the provider module says what was expected (text, JSON, a JSON
schema, tool calls) and hands over the output text; this module says whether it parsed,
why not, and whether the model wrapped it in filler or code fences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from frictionlens import semconv

# Filler openers ("Sure! Here is the JSON:") that models put before the content asked for.
_PREAMBLE = re.compile(
    r"^\s*(?:sure|certainly|of course|absolutely|okay|ok|great|alright|here(?:'s| is| are)|below is|"
    r"happy to help|i(?:'d| would) be happy to|as requested)\b[^\n]{0,160}?(?::|!|\.)?\s*(?:\n|$|(?=[{\[`]))",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(?P<body>.*?)\n?```\s*$", re.DOTALL)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@dataclass(frozen=True, slots=True)
class FormatCheck:
    valid: bool
    error: str | None = None
    preamble: bool = False
    code_fence: bool = False


def check_text(text: str, has_tool_calls: bool = False) -> FormatCheck:
    """Plain text: only emptiness fails; a filler opener is still noted."""
    if not text.strip() and not has_tool_calls:
        return FormatCheck(False, semconv.FORMAT_ERROR_EMPTY)
    return FormatCheck(
        True,
        None,
        preamble=bool(_PREAMBLE.match(text)) if text else False,
        code_fence=text.lstrip().startswith("```"),
    )


def check_json(text: str, schema: Mapping[str, Any] | None = None) -> FormatCheck:
    """JSON expected: strict parse of the whole output, then the schema's top level."""
    stripped = text.strip()
    if not stripped:
        return FormatCheck(False, semconv.FORMAT_ERROR_EMPTY)
    try:  # a whole output that parses is JSON, whatever it contains ('"{"' is a string)
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        body, preamble, fence = _unwrap(stripped)
        if preamble:
            return FormatCheck(
                False, semconv.FORMAT_ERROR_PREAMBLE, preamble=True, code_fence=fence
            )
        if fence:
            return FormatCheck(False, semconv.FORMAT_ERROR_CODE_FENCE, code_fence=True)
        return FormatCheck(False, semconv.FORMAT_ERROR_JSON_DECODE)
    if schema is not None and not schema_holds(value, schema):
        return FormatCheck(False, semconv.FORMAT_ERROR_SCHEMA)
    return FormatCheck(True)


def check_tool_arguments(arguments: Sequence[str]) -> FormatCheck:
    """Every tool call's arguments must be a JSON object."""
    for args in arguments:
        try:
            if not isinstance(json.loads(args or "{}"), dict):
                return FormatCheck(False, semconv.FORMAT_ERROR_SCHEMA)
        except (ValueError, RecursionError, TypeError):
            return FormatCheck(False, semconv.FORMAT_ERROR_JSON_DECODE)
    return FormatCheck(True)


def schema_holds(value: Any, schema: Mapping[str, Any]) -> bool:
    """Top-level type, required keys and the declared types of present properties."""
    if not _type_ok(value, schema.get("type")):
        return False
    if isinstance(value, dict):
        for key in schema.get("required") or ():
            if key not in value:
                return False
        props = schema.get("properties") or {}
        if isinstance(props, Mapping):
            for key, sub in props.items():
                if (
                    key in value
                    and isinstance(sub, Mapping)
                    and not _type_ok(value[key], sub.get("type"))
                ):
                    return False
    return True


def _type_ok(value: Any, declared: Any) -> bool:
    if declared is None:
        return True
    names = declared if isinstance(declared, list) else [declared]
    for name in names:
        types = _JSON_TYPES.get(name)
        if types is None:
            return True  # a type we do not know: do not fail the output for it
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, types):
            return True
    return False


def _unwrap(text: str) -> tuple[str, bool, bool]:
    """(JSON body, had a preamble, was fenced) of a stripped output."""
    preamble = False
    if text[0] not in "{[":
        start = min(
            (i for i in (text.find("{"), text.find("["), text.find("```")) if i >= 0), default=-1
        )
        if start > 0:
            preamble = True
            text = text[start:]
    match = _FENCE.match(text)
    if match:
        return match.group("body").strip(), preamble, True
    return text, preamble, False
