"""OTLP/JSON, as the OpenTelemetry Collector's file exporter and OTLP/HTTP JSON spell it.

protobuf's JSON mapping writes ``bytes`` as base64, but OTLP/JSON writes trace and span ids
as lower-case hex; everything else (lowerCamelCase keys, int64 as strings, enums as
integers) is the standard mapping. These two functions are the only place that fixes ids up.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})
M = TypeVar("M", bound=Message)


def _walk(node: Any, convert) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = convert(value)
            else:
                _walk(value, convert)
    elif isinstance(node, list):
        for item in node:
            _walk(item, convert)


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_b64(value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"trace/span id is not hex: {value[:40]!r}") from exc
    return base64.b64encode(raw).decode("ascii")


def to_dict(message: Message) -> dict[str, Any]:
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)
    _walk(doc, _b64_to_hex)
    return doc


def to_json_line(message: Message) -> str:
    """One compact OTLP/JSON document, no newline inside (a line of a .jsonl file)."""
    return json.dumps(to_dict(message), separators=(",", ":"))


def parse(doc: str | bytes | dict[str, Any], message: M) -> M:
    """Fill ``message`` from an OTLP/JSON document; raises ValueError on malformed input."""
    try:
        data = json.loads(doc) if isinstance(doc, (str, bytes)) else json.loads(json.dumps(doc))
        _walk(data, _hex_to_b64)
        return json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except (json_format.ParseError, json.JSONDecodeError, binascii.Error, TypeError) as exc:
        raise ValueError(f"malformed OTLP/JSON: {exc}") from exc
