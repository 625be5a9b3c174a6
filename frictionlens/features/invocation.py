"""One LLM call, in provider-neutral terms, and the features derived from it.

``LLMInvocation`` is what happened: our SDK wrappers fill it from the SDK's request and
response objects, the normalizer fills it from spans other instrumentations made. How it is
emitted (span, metrics) is ``frictionlens.instrumentation.telemetry``; what the stages read
besides attributes is ``call_features``. Both sides use this module, so a call gets the same
signals whoever traced it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span

from frictionlens import semconv
from frictionlens.features import answer as answers
from frictionlens.features import output as fmt
from frictionlens.features import text as textfeat
from frictionlens.features.record import CallFeatures, MessageFeatures, TextFeatures


@dataclass
class LLMInvocation:
    """Everything observed about one call, in provider-neutral terms."""

    operation: str
    provider: str
    request_model: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    request_attributes: dict[str, Any] = field(default_factory=dict)
    streaming: bool = False
    # what the request asked for
    expected_format: str = semconv.FORMAT_TEXT
    schema: Mapping[str, Any] | None = None
    tools_forced: bool = False
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(role, text) of every input message, system prompt included"""
    system_text: str | None = None
    route: str | None = None
    """the route the app gave (its session's); None when the stages infer one"""
    conversation_id: str | None = None
    """the conversation id the app gave (its session's)"""
    # what came back
    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    response_attributes: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    """text of each choice"""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    """(name, arguments JSON text) requested by the model"""
    tool_call_ids: list[str | None] = field(default_factory=list)
    """the provider's id of each ``tool_calls`` entry (same order)"""
    output_parts: list[list[str]] = field(default_factory=list)
    """streamed text pieces per choice; joined into ``outputs`` when the call ends"""
    tool_call_parts: list[list[str]] = field(default_factory=list)
    """streamed tool calls: [name, argument pieces...]; joined into ``tool_calls`` at the end"""
    refusal: bool = False
    truncated: bool = False
    error_type: str | None = None
    retries: int = 0
    abandoned: bool = False
    output_read: bool = True
    """False when the caller read the raw body itself: there is no output to judge"""
    chunks: int = 0
    start_ns: int = field(default_factory=time.time_ns)
    first_chunk_ns: int | None = None
    span: Span | None = None
    ended: bool = False

    def system_prompt(self) -> str | None:
        """The system prompt as sent: the SDK's own parameter, else the system and developer
        messages joined; what infers the stream's route."""
        if self.system_text is not None:
            return self.system_text
        return "\n".join(t for r, t in self.messages if r in ("system", "developer")) or None


def stream_name(provider: str, model: str | None, route: str | None) -> str:
    """The population that should behave alike: provider/model/route."""
    return f"{provider}/{model or 'unknown'}/{route or 'default'}"


def route_of(system_digest: int | None) -> str | None:
    """A short, salted route id inferred from the system prompt."""
    return None if system_digest is None else f"sys-{system_digest & 0xFFFFFFFF:08x}"


def output_signals(
    inv: LLMInvocation, text_features: Callable[[str], TextFeatures]
) -> tuple[dict[str, Any], tuple[TextFeatures, ...], fmt.FormatCheck | None]:
    """The output attributes of one LLM call, with the outputs' text features they needed.

    Shared by our wrappers and by the normalizer of spans other instrumentations made
    (processors/normalize.py), so a call gets the same signals whoever traced it; the rest
    of the call features (``call_features``) can wait for the pipeline."""
    a: dict[str, Any] = {}
    out_text = "\n".join(inv.outputs)
    a[semconv.OUTPUT_CHARS] = len(out_text) + sum(len(args or "") for _, args in inv.tool_calls)
    a[semconv.OUTPUT_FORMAT_EXPECTED] = (
        inv.expected_format
        if not (inv.tool_calls or inv.tools_forced)
        else semconv.FORMAT_TOOL_CALL
    )
    a[semconv.GEN_AI_OUTPUT_TYPE] = (
        semconv.OUTPUT_TYPE_JSON
        if inv.expected_format in (semconv.FORMAT_JSON, semconv.FORMAT_JSON_SCHEMA)
        else semconv.OUTPUT_TYPE_TEXT
    )
    a[semconv.OUTPUT_TRUNCATED] = inv.truncated
    # a stream the caller stopped holds part of an answer: its format is not judged
    check = None if inv.abandoned or not inv.output_read else _check_format(inv)
    if check is not None:
        a[semconv.OUTPUT_FORMAT_VALID] = check.valid
        if check.error:
            a[semconv.OUTPUT_FORMAT_ERROR] = check.error
        a[semconv.OUTPUT_PREAMBLE] = check.preamble
        a[semconv.OUTPUT_CODE_FENCE] = check.code_fence
    outputs = tuple(text_features(t) for t in inv.outputs)
    a[semconv.OUTPUT_REFUSAL] = inv.refusal or any("refusal" in o.cues for o in outputs)
    if check is not None and outputs and not inv.tool_calls and inv.outputs[0]:
        request = next((t for r, t in reversed(inv.messages) if r == "user"), "")
        a[semconv.OUTPUT_NON_ANSWER] = answers.non_answer(request, inv.outputs[0], outputs[0].cues)
    return a, outputs, check


def _check_format(inv: LLMInvocation) -> fmt.FormatCheck:
    if inv.error_type and not inv.outputs and not inv.tool_calls:
        return fmt.FormatCheck(False, semconv.FORMAT_ERROR_EMPTY)
    if inv.tool_calls or inv.tools_forced:
        if not inv.tool_calls:
            return fmt.FormatCheck(False, semconv.FORMAT_ERROR_EMPTY)
        return fmt.check_tool_arguments([args for _, args in inv.tool_calls])
    text = inv.outputs[0] if inv.outputs else ""
    if inv.expected_format in (semconv.FORMAT_JSON, semconv.FORMAT_JSON_SCHEMA):
        checks = [fmt.check_json(t, inv.schema) for t in (inv.outputs or [""])]
        return next((c for c in checks if not c.valid), checks[0])
    return fmt.check_text(text)


def call_features(
    inv: LLMInvocation,
    text_features: Callable[[str], TextFeatures],
    salt: bytes,
    outputs: tuple[TextFeatures, ...] | None = None,
) -> CallFeatures:
    """What the stages read besides attributes: salted digests, sketches, cue flags, vectors.

    ``outputs``: the outputs' features when ``output_signals`` already computed them."""
    tf = text_features
    messages = tuple(MessageFeatures(role, tf(text)) for role, text in inv.messages)
    system = inv.system_prompt()
    if outputs is None:
        outputs = tuple(tf(t) for t in inv.outputs)
    tools = tuple((name, textfeat.digest(args or "", salt)) for name, args in inv.tool_calls)
    vector = _content_vector(inv.outputs[0]) if inv.outputs and inv.outputs[0] else None
    return CallFeatures(
        messages=messages,
        outputs=outputs,
        system_digest=None if system is None else tf(system).digest,
        tool_calls=tools,
        tool_call_ids=tuple(None if i is None else str(i) for i in inv.tool_call_ids),
        output_vector=vector,
    )


_content_vector_fn: Any = None


def _content_vector(text: str) -> Any:
    """The output's content sketch for drift, when that module is present.

    The import is resolved once: a failed import is not cached by Python and costs a
    file-system search on every call."""
    global _content_vector_fn
    fn = _content_vector_fn
    if fn is None:
        try:
            from frictionlens.features.vectors import content_vector as fn
        except ImportError:
            fn = _no_vector
        _content_vector_fn = fn
    return fn(text)


def _no_vector(text: str) -> None:
    return None
