"""Spans made by other GenAI instrumentations, read as if our wrappers had made them.

An app already traced by the official OpenTelemetry OpenAI instrumentation
(``opentelemetry-instrumentation-openai-v2`` / ``opentelemetry-util-genai``), Traceloop
OpenLLMetry or OpenInference, or a non-Python app whose spans reach the collector, gets the
same signals: this stage runs first, only on spans that carry no in-process features, maps the
peer's attribute names to the GenAI names the stages read and, where the peer captured content
(attributes or span events), derives the call features from that text with the code our own
instrumentation uses (``frictionlens.features.invocation.output_signals``). What a span does not say is left out,
never guessed. Content read here is never put on the span: only the derived flags and counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode

from frictionlens import semconv
from frictionlens import semconv_peers as peers
from frictionlens.features import text as textfeat
from frictionlens.features.invocation import LLMInvocation, call_features, output_signals
from frictionlens.features.readers import (
    REQUEST_PARAMS,
    content_text,
    format_request,
    numeric_params,
    tools_forced,
)
from frictionlens.processors.pipeline import Emit, SpanRecord, span_attributes

#: finish reasons that mean the token limit stopped the answer (OpenAI, Anthropic, Responses)
_TRUNCATED = frozenset({"length", "max_tokens", "max_output_tokens"})
_REFUSED = frozenset({"refusal"})
#: attributes that mark a span as some instrumentation's LLM call
_MARKERS = frozenset(
    {
        semconv.GEN_AI_OPERATION_NAME,
        peers.OPENINFERENCE_SPAN_KIND,
        peers.LEGACY_GEN_AI_SYSTEM,
        peers.TRACELOOP_REQUEST_TYPE,
    }
)
#: attributes (of the span or of one event) that carry GenAI-convention content
_GENAI_CONTENT = frozenset(
    {
        semconv.GEN_AI_SYSTEM_INSTRUCTIONS,
        semconv.GEN_AI_INPUT_MESSAGES,
        semconv.GEN_AI_OUTPUT_MESSAGES,
    }
)
#: a Traceloop indexed key at the start of a ``_key_lines`` line
_TRACELOOP_LINES = (
    "\n" + peers.TRACELOOP_PROMPT_PREFIX,
    "\n" + peers.TRACELOOP_COMPLETION_PREFIX,
)
_FORMAT_JUDGEMENT = (
    semconv.OUTPUT_FORMAT_EXPECTED,
    semconv.GEN_AI_OUTPUT_TYPE,
    semconv.OUTPUT_FORMAT_VALID,
    semconv.OUTPUT_FORMAT_ERROR,
)


class Normalizer:
    """Stage, first in the pipeline: peer spans -> our GenAI attributes and call features."""

    def __init__(self, salt: bytes) -> None:
        self.salt = salt
        self._text_features = lru_cache(maxsize=4096)(partial(textfeat.text_features, salt=salt))

    def process(self, record: SpanRecord, emit: Emit) -> None:
        if record.features is not None:  # our wrappers made it: nothing to normalise
            return
        attrs = span_attributes(record.span)  # the first stage: nothing added yet
        if not attrs or _MARKERS.isdisjoint(attrs):
            return
        if semconv.GEN_AI_OPERATION_NAME in attrs:
            read = _genai
        elif peers.OPENINFERENCE_SPAN_KIND in attrs:
            read = _openinference
        elif peers.LEGACY_GEN_AI_SYSTEM in attrs or peers.TRACELOOP_REQUEST_TYPE in attrs:
            read = _traceloop_legacy
        else:
            return
        inv = read(record.span, attrs)
        if inv is None:
            return
        self._apply(record, attrs, inv)

    def tick(self, now_ns: int, emit: Emit) -> None:
        """Stateless: nothing expires."""

    def close(self, emit: Emit) -> None:
        """Stateless: nothing to flush."""

    def _apply(self, record: SpanRecord, attrs: Mapping[str, Any], inv: _PeerCall) -> None:
        """Set what ``inv`` knows and the span (``attrs``) lacks; the first stage, so the span's
        own attributes are all there is."""
        span = record.span
        mapped: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: inv.operation,
            semconv.GEN_AI_PROVIDER_NAME: inv.provider or None,
            semconv.GEN_AI_REQUEST_MODEL: inv.request_model,
            semconv.GEN_AI_RESPONSE_MODEL: inv.response_model,
            semconv.GEN_AI_RESPONSE_ID: inv.response_id,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: tuple(inv.finish_reasons) or None,
            semconv.GEN_AI_USAGE_INPUT_TOKENS: inv.input_tokens,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: inv.output_tokens,
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: inv.cache_read_tokens,
            semconv.SERVER_ADDRESS: inv.server_address,
            **inv.request_attributes,
            **inv.response_attributes,
        }
        events = (
            span.events
        )  # most spans have none: then neither an exception type nor a first chunk
        if inv.error_type is None and events and span.status.status_code is StatusCode.ERROR:
            inv.error_type = _exception_type(events)
        mapped[semconv.ERROR_TYPE] = inv.error_type
        # every reader returns LLM calls only (chat, text_completion, generate_content)
        ttfc = _first_chunk_s(events, span.start_time)
        if ttfc is not None:
            mapped[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        if inv.finish_reasons:
            mapped[semconv.OUTPUT_TRUNCATED] = inv.truncated = bool(
                _TRUNCATED & set(inv.finish_reasons)
            )
            inv.refusal = bool(_REFUSED & set(inv.finish_reasons))
            if inv.refusal:
                mapped[semconv.OUTPUT_REFUSAL] = True
        if (
            inv.format_known and inv.expected_format != semconv.FORMAT_TEXT
        ):  # text: unless tools answered
            mapped[semconv.OUTPUT_FORMAT_EXPECTED] = inv.expected_format
        if inv.output_known:
            signals, outputs, _ = output_signals(inv, self._text_features)
            if not inv.finish_reasons:
                del signals[semconv.OUTPUT_TRUNCATED]  # unknown, not False
            if not inv.format_known and not inv.tool_calls:  # what was asked for is unknown:
                for key in _FORMAT_JUDGEMENT:  # preamble and code fence still describe the text
                    signals.pop(key, None)
            mapped.update(signals)
            record.features = call_features(inv, self._text_features, self.salt, outputs)
        elif inv.messages:  # threading and rephrase still work on the input alone
            record.features = call_features(inv, self._text_features, self.salt)
        for key, value in mapped.items():
            if value is not None and attrs.get(key) is None:
                record.set(key, value)


@dataclass
class _PeerCall(LLMInvocation):
    """An invocation read back from a span, with what the span did (not) say."""

    format_known: bool = False
    """the request's expected format is on the span (else the format is not judged)"""
    output_known: bool = False
    """the peer captured the output text"""


# -- helpers ---------------------------------------------------------------------------------
def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _key_lines(attrs: Mapping[str, Any]) -> str:
    """Every key on a line of its own: a prefix test is then one C-level substring search
    (most spans have no indexed keys at all)."""
    return "\n" + "\n".join(attrs)


def _indexed(attrs: Mapping[str, Any], keys: str, prefix: str) -> Iterator[tuple[int, str]]:
    """(N, "N.") for every ``prefix + N + "."`` present, N = 0, 1, ... until one is missing;
    ``keys`` is ``_key_lines(attrs)``, made once for all the prefixes a reader tests."""
    i = 0
    while True:
        head = f"{prefix}{i}."
        if "\n" + head not in keys or not any(k.startswith(head) for k in attrs):
            return
        yield i, head
        i += 1


def _exception_type(events: Sequence[Event]) -> str | None:
    for event in events:
        if event.name == semconv.EXCEPTION_EVENT:
            return _str((event.attributes or {}).get(semconv.EXCEPTION_TYPE))
    return None


def _first_chunk_s(events: Sequence[Event], start_time: int | None) -> float | None:
    """Seconds to the first streamed chunk, from the first chunk event a peer records."""
    for event in events:
        if event.name in peers.PEER_FIRST_CHUNK_EVENTS and start_time:
            return max(0.0, (event.timestamp - start_time) / 1e9)
    return None


def _host(url: Any) -> str | None:
    try:
        return urlsplit(url).hostname if isinstance(url, str) else None
    except ValueError:
        return None


def _format_from(value: Any, inv: _PeerCall) -> None:
    """A request's response format (OpenAI ``response_format``, or a bare JSON schema)."""
    fmt = _json(value)
    if not isinstance(fmt, Mapping):
        return
    if fmt.get("type") in ("json_object", "json_schema", "text"):
        inv.expected_format, inv.schema = format_request(fmt)
    else:
        inv.expected_format, inv.schema = semconv.FORMAT_JSON_SCHEMA, fmt
    inv.format_known = True


# -- GenAI semantic conventions (official instrumentations, util-genai, other languages) ------
def _genai(span: ReadableSpan, attrs: Mapping[str, Any]) -> _PeerCall | None:
    op = attrs.get(semconv.GEN_AI_OPERATION_NAME)
    if op not in semconv.LLM_OPERATIONS:
        return None
    inv = _PeerCall(
        operation=str(op),
        provider=_str(attrs.get(semconv.GEN_AI_PROVIDER_NAME))
        or _str(attrs.get(peers.LEGACY_GEN_AI_SYSTEM))
        or "",
    )
    if attrs.get(semconv.GEN_AI_USAGE_INPUT_TOKENS) is None:
        inv.input_tokens = _int(attrs.get(peers.LEGACY_GEN_AI_USAGE_PROMPT_TOKENS))
        inv.output_tokens = _int(attrs.get(peers.LEGACY_GEN_AI_USAGE_COMPLETION_TOKENS))
    # the conventions require gen_ai.output.type when the request asked for an output format
    inv.format_known = True
    if attrs.get(semconv.GEN_AI_OUTPUT_TYPE) == semconv.OUTPUT_TYPE_JSON:
        inv.expected_format = semconv.FORMAT_JSON
    if peers.TRACELOOP_STRUCTURED_OUTPUT_SCHEMA in attrs:
        _format_from(attrs[peers.TRACELOOP_STRUCTURED_OUTPUT_SCHEMA], inv)
    _traceloop_extras(attrs, inv)
    reasons = attrs.get(semconv.GEN_AI_RESPONSE_FINISH_REASONS)
    inv.finish_reasons = [str(r) for r in reasons] if isinstance(reasons, (list, tuple)) else []
    events = span.events
    found = _genai_content(attrs, inv) or any(
        _genai_content(e.attributes, inv)
        for e in events
        if e.attributes
        and (
            semconv.GEN_AI_INPUT_MESSAGES in e.attributes
            or semconv.GEN_AI_OUTPUT_MESSAGES in e.attributes
        )
    )
    if not found and not _traceloop_indexed_content(attrs, inv):
        _event_content(events, inv)
    return inv


def _parts_text(parts: Any) -> tuple[str, list[tuple[str, str]], list[str | None]]:
    """(text, tool calls, tool call ids) of one GenAI-convention message's parts."""
    texts: list[str] = []
    calls: list[tuple[str, str]] = []
    ids: list[str | None] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif kind == "tool_call":
            args = part.get("arguments")
            calls.append(
                (str(part.get("name") or ""), args if isinstance(args, str) else json.dumps(args))
            )
            ids.append(_str(part.get("id")))
        elif kind == "tool_call_response":
            resp = part.get("response", part.get("result"))
            texts.append(resp if isinstance(resp, str) else json.dumps(resp))
    return "\n".join(texts), calls, ids


def _with_calls(text: str, calls: list[tuple[str, str]]) -> str:
    """An input message's text as our OpenAI wrapper reads it: tool calls appended."""
    return text + "".join(f"\n{name}({args})" for name, args in calls)


def _genai_content(attrs: Mapping[str, Any], inv: _PeerCall) -> bool:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``."""
    if _GENAI_CONTENT.isdisjoint(attrs):  # the common case: content was not captured
        return False
    found = False
    system = _json(attrs.get(semconv.GEN_AI_SYSTEM_INSTRUCTIONS))
    if system is not None:
        text = system if isinstance(system, str) else _parts_text(system)[0]
        inv.system_text = text
        inv.messages.append(("system", text))
        found = True
    for msg in _json(attrs.get(semconv.GEN_AI_INPUT_MESSAGES)) or ():
        if isinstance(msg, Mapping):
            text, calls, _ = _parts_text(msg.get("parts"))
            inv.messages.append((str(msg.get("role") or "user"), _with_calls(text, calls)))
            found = True
    outputs = _json(attrs.get(semconv.GEN_AI_OUTPUT_MESSAGES))
    if isinstance(outputs, list):
        reasons = []
        for msg in outputs:
            if not isinstance(msg, Mapping):
                continue
            text, calls, ids = _parts_text(msg.get("parts"))
            inv.outputs.append(text)
            inv.tool_calls += calls
            inv.tool_call_ids += ids
            reasons.append(str(msg.get("finish_reason") or ""))
        if not inv.finish_reasons and all(reasons):
            inv.finish_reasons = reasons
        inv.output_known = found = True
    return found


def _event_content(events: Sequence[Event], inv: _PeerCall) -> None:
    """The earlier event form: ``gen_ai.<role>.message`` and ``gen_ai.choice`` span events."""
    for event in events:
        attrs = event.attributes or {}
        role = peers.PEER_MESSAGE_EVENTS.get(event.name)
        if role is not None:
            inv.messages.append(
                (role, content_text(_json(attrs.get("content")) or attrs.get("content")))
            )
        elif event.name == peers.PEER_CHOICE_EVENT:
            message = _json(attrs.get("message")) or {}
            content = message.get("content") if isinstance(message, Mapping) else message
            inv.outputs.append(content_text(content))
            calls = message.get("tool_calls") if isinstance(message, Mapping) else None
            for call in calls or ():
                fn = call.get("function") or {}
                args = fn.get("arguments")
                inv.tool_calls.append(
                    (str(fn.get("name") or ""), args if isinstance(args, str) else json.dumps(args))
                )
                inv.tool_call_ids.append(_str(call.get("id")))
            reason = _str(attrs.get("finish_reason"))
            if reason and len(inv.finish_reasons) < len(inv.outputs):
                inv.finish_reasons.append(reason)
            inv.output_known = True


# -- Traceloop OpenLLMetry ---------------------------------------------------------------------
def _traceloop_extras(attrs: Mapping[str, Any], inv: _PeerCall) -> None:
    """Traceloop's own names for what the conventions name otherwise."""
    fingerprint = attrs.get(peers.TRACELOOP_SYSTEM_FINGERPRINT) or attrs.get(
        peers.LEGACY_OPENAI_SYSTEM_FINGERPRINT
    )
    if fingerprint:
        inv.response_attributes[semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    inv.server_address = _host(attrs.get(peers.TRACELOOP_API_BASE))
    streaming = attrs.get(
        peers.TRACELOOP_IS_STREAMING, attrs.get(peers.LEGACY_TRACELOOP_IS_STREAMING)
    )
    if isinstance(streaming, bool):
        inv.request_attributes[semconv.GEN_AI_REQUEST_STREAM] = streaming


def _traceloop_legacy(span: ReadableSpan, attrs: Mapping[str, Any]) -> _PeerCall | None:
    """Traceloop releases before the conventions' message attributes: ``gen_ai.prompt.N.*``."""
    kind = attrs.get(peers.TRACELOOP_REQUEST_TYPE)
    op = (
        {"chat": semconv.OP_CHAT, "completion": semconv.OP_TEXT_COMPLETION}.get(str(kind))
        if kind
        else None
    )
    if (
        op is None
        and peers.TRACELOOP_REQUEST_TYPE not in attrs
        and (
            any(k.startswith(peers.TRACELOOP_PROMPT_PREFIX) for k in attrs)
            or semconv.GEN_AI_REQUEST_MODEL in attrs
        )
    ):
        op = semconv.OP_CHAT
    if op is None:
        return None
    inv = _PeerCall(operation=op, provider=str(attrs.get(peers.LEGACY_GEN_AI_SYSTEM) or "").lower())
    inv.request_model = _str(attrs.get(semconv.GEN_AI_REQUEST_MODEL))
    inv.input_tokens = _int(attrs.get(peers.LEGACY_GEN_AI_USAGE_PROMPT_TOKENS))
    inv.output_tokens = _int(attrs.get(peers.LEGACY_GEN_AI_USAGE_COMPLETION_TOKENS))
    _traceloop_extras(attrs, inv)
    _traceloop_indexed_content(attrs, inv)
    return inv


def _traceloop_indexed_content(attrs: Mapping[str, Any], inv: _PeerCall) -> bool:
    keys = _key_lines(attrs)
    if (
        _TRACELOOP_LINES[0] not in keys and _TRACELOOP_LINES[1] not in keys
    ):  # no key has either prefix
        return False
    found = False
    for _, head in _indexed(attrs, keys, peers.TRACELOOP_PROMPT_PREFIX):
        inv.messages.append(
            (str(attrs.get(head + "role") or "user"), str(attrs.get(head + "content") or ""))
        )
        found = True
    reasons = []
    for _, head in _indexed(attrs, keys, peers.TRACELOOP_COMPLETION_PREFIX):
        inv.outputs.append(str(attrs.get(head + "content") or ""))
        for _, call in _indexed(attrs, keys, head + "tool_calls."):
            inv.tool_calls.append(
                (str(attrs.get(call + "name") or ""), str(attrs.get(call + "arguments") or ""))
            )
            inv.tool_call_ids.append(_str(attrs.get(call + "id")))
        reasons.append(str(attrs.get(head + "finish_reason") or ""))
        inv.output_known = found = True
    if reasons and all(reasons) and not inv.finish_reasons:
        inv.finish_reasons = reasons
    return found


# -- OpenInference -----------------------------------------------------------------------------
def _openinference(span: ReadableSpan, attrs: Mapping[str, Any]) -> _PeerCall | None:
    if attrs.get(peers.OPENINFERENCE_SPAN_KIND) != "LLM":
        return None
    op = (
        semconv.OP_TEXT_COMPLETION
        if span.name == peers.OPENINFERENCE_COMPLETION_SPAN
        else semconv.OP_CHAT
    )
    provider = _str(attrs.get(peers.OPENINFERENCE_LLM_PROVIDER)) or _str(
        attrs.get(peers.OPENINFERENCE_LLM_SYSTEM)
    )
    inv = _PeerCall(operation=op, provider=(provider or "").lower())
    params = _json(attrs.get(peers.OPENINFERENCE_INVOCATION_PARAMETERS))
    if isinstance(params, Mapping):
        inv.request_model = _str(params.get("model"))
        inv.request_attributes.update(numeric_params(params, REQUEST_PARAMS))
        if isinstance(params.get("stream"), bool):
            inv.request_attributes[semconv.GEN_AI_REQUEST_STREAM] = params["stream"]
        inv.tools_forced = tools_forced(params)
        if "response_format" in params:
            _format_from(params["response_format"], inv)
        else:
            inv.format_known = True  # the request is all there: no response format asked for
    inv.response_model = _str(attrs.get(peers.OPENINFERENCE_MODEL_NAME))
    inv.input_tokens = _int(attrs.get(peers.OPENINFERENCE_TOKENS_PROMPT))
    inv.output_tokens = _int(attrs.get(peers.OPENINFERENCE_TOKENS_COMPLETION))
    inv.cache_read_tokens = _int(attrs.get(peers.OPENINFERENCE_TOKENS_CACHE_READ))
    session = _str(attrs.get(peers.OPENINFERENCE_SESSION_ID))
    if session:
        inv.request_attributes[semconv.GEN_AI_CONVERSATION_ID] = session
    if attrs.get(peers.OPENINFERENCE_OUTPUT_MIME_TYPE) == "application/json":
        body = _json(attrs.get(peers.OPENINFERENCE_OUTPUT_VALUE))
        if isinstance(body, Mapping):
            inv.response_id = _str(body.get("id"))
            if body.get("system_fingerprint"):
                inv.response_attributes[semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = body[
                    "system_fingerprint"
                ]
            choices = body.get("choices")
            reasons = (
                [c.get("finish_reason") for c in choices if isinstance(c, Mapping)]
                if isinstance(choices, list)
                else []
            )
            if reasons and all(isinstance(r, str) for r in reasons):
                inv.finish_reasons = reasons
    if not inv.finish_reasons and _str(attrs.get(peers.OPENINFERENCE_FINISH_REASON)):
        inv.finish_reasons = [attrs[peers.OPENINFERENCE_FINISH_REASON]]
    keys = _key_lines(attrs)
    for _, head in _indexed(attrs, keys, peers.OPENINFERENCE_INPUT_MESSAGES):
        text, calls, _ = _openinference_message(attrs, keys, head)
        inv.messages.append(
            (str(attrs.get(head + "message.role") or "user"), _with_calls(text, calls))
        )
    for _, head in _indexed(attrs, keys, peers.OPENINFERENCE_OUTPUT_MESSAGES):
        text, calls, ids = _openinference_message(attrs, keys, head)
        inv.outputs.append(text)
        inv.tool_calls += calls
        inv.tool_call_ids += ids
        inv.output_known = True
    return inv


def _openinference_message(
    attrs: Mapping[str, Any], keys: str, head: str
) -> tuple[str, list[tuple[str, str]], list[str | None]]:
    text = attrs.get(head + "message.content")
    if not isinstance(text, str):
        text = "\n".join(
            str(attrs.get(part + "message_content.text") or "")
            for _, part in _indexed(attrs, keys, head + "message.contents.")
        )
    calls: list[tuple[str, str]] = []
    ids: list[str | None] = []
    for _, call in _indexed(attrs, keys, head + "message.tool_calls."):
        calls.append(
            (
                str(attrs.get(call + "tool_call.function.name") or ""),
                str(attrs.get(call + "tool_call.function.arguments") or ""),
            )
        )
        ids.append(_str(attrs.get(call + "tool_call.id")))
    return text, calls, ids
