"""How one LLM call is emitted: its GenAI client span, in-process features and metrics.

Provider modules fill an ``LLMInvocation`` (``frictionlens.features.invocation``) from the
SDK's request and response objects; ``Telemetry`` turns it into one GenAI client span, the
per-call features the signal stages read, and the call metrics. Nothing here knows any SDK.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from frictionlens import semconv
from frictionlens.context import CallRef, current_session, last_call
from frictionlens.features import output as fmt
from frictionlens.features import record as features
from frictionlens.features import text as textfeat
from frictionlens.features.invocation import (
    LLMInvocation,
    call_features,
    output_signals,
    route_of,
    stream_name,
)
from frictionlens.features.record import CallFeatures, TextFeatures
from frictionlens.health import count_internal_error

_log = logging.getLogger(__name__)

#: identities (operation, provider, models, server, error) whose call-metric attribute sets
#: are kept for reuse, at most; the table starts afresh when full
MAX_METRIC_ATTRIBUTE_SETS = 256


def record_exception(span: Span, exc: BaseException, capture_content: bool) -> None:
    """An ``exception`` event. Messages and tracebacks can quote prompts or completions (a
    provider's validation error echoes its input, an app's error names what the user asked
    for), so without content capture only the exception's type is recorded."""
    if capture_content:
        span.record_exception(exc)
    else:
        span.add_event(semconv.EXCEPTION_EVENT, {semconv.EXCEPTION_TYPE: type(exc).__qualname__})


#: the invocation whose SDK call is running in this context (retry counting, re-entrancy)
current_invocation: contextvars.ContextVar[LLMInvocation | None] = contextvars.ContextVar(
    "frictionlens_invocation", default=None
)


class Telemetry:
    """Emits invocations: span, in-process features, metrics. One per instrument() call."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter: Meter,
        *,
        salt: bytes,
        capture_content: bool = False,
        content_max_chars: int = 4096,
        defer: Callable[[Callable[[], None]], bool] | None = None,
    ) -> None:
        from frictionlens import __version__

        self.tracer = trace.get_tracer(
            semconv.SCOPE_NAME, __version__, tracer_provider=tracer_provider
        )
        self.defer = defer
        """hands the end of a call (outcome, metrics, ``span.end``) to a background worker;
        False when it cannot take it (then the calling thread does it)"""
        self.salt = salt
        self.capture_content = capture_content
        self.content_max_chars = content_max_chars
        self._text_features = lru_cache(maxsize=4096)(self._compute_text_features)
        latest = semconv.SEMCONV_OPT_IN_LATEST in os.environ.get(semconv.SEMCONV_OPT_IN_ENV, "")
        self._duration = meter.create_histogram(
            semconv.METRIC_GEN_AI_INFERENCE_OPERATION_DURATION
            if latest
            else semconv.METRIC_GEN_AI_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS_S,
        )
        self._tokens = meter.create_histogram(
            semconv.METRIC_GEN_AI_INFERENCE_TOKEN_USAGE
            if latest
            else semconv.METRIC_GEN_AI_TOKEN_USAGE,
            unit="{token}",
            description="Measures number of input and output tokens used",
            explicit_bucket_boundaries_advisory=semconv.TOKEN_BUCKETS,
        )
        self._ttfc = meter.create_histogram(
            semconv.METRIC_GEN_AI_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS_S,
        )
        self._length = meter.create_histogram(
            semconv.METRIC_OUTPUT_LENGTH,
            unit="{char}",
            description="Characters of output text per call",
            explicit_bucket_boundaries_advisory=semconv.OUTPUT_LENGTH_BUCKETS,
        )
        self._format_failures = meter.create_counter(
            semconv.METRIC_FORMAT_FAILURES,
            unit="{call}",
            description="Calls whose output broke the expected format",
        )
        self._metric_attributes: dict[tuple[Any, ...], _CallMetricAttributes] = {}
        self._retries = meter.create_counter(
            semconv.METRIC_RETRIES, unit="{retry}", description="HTTP retries inside SDK calls"
        )

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, inv: LLMInvocation) -> None:
        """Open the span; the SDK call runs inside it (so HTTP spans become its children)."""
        attrs = _identity(inv)
        if inv.server_port:
            attrs[semconv.SERVER_PORT] = inv.server_port
        attrs.update(inv.request_attributes)
        session = current_session.get()
        if session is not None:
            inv.conversation_id = session.conversation_id
            attrs[semconv.GEN_AI_CONVERSATION_ID] = session.conversation_id
            if session.user_id:
                attrs[semconv.USER_ID] = session.user_id
            if session.route:
                inv.route = session.route
                attrs[semconv.ROUTE] = session.route
        name = f"{inv.operation} {inv.request_model}" if inv.request_model else inv.operation
        inv.start_ns = time.time_ns()
        inv.span = self.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attrs, start_time=inv.start_ns
        )

    def finish(self, inv: LLMInvocation) -> None:
        """End the call's span exactly once, with its outcome.

        The app's thread only stamps the end time and remembers the call for ``feedback()``;
        reading the outcome, recording metrics and ending the span wait for the background
        worker when there is one, so the call returns to the app without them. The
        invocation no longer changes once ended, and the span keeps its true end time."""
        if inv.ended or inv.span is None:
            return
        inv.ended = True
        end_ns = time.time_ns()
        span = inv.span
        try:
            ctx = span.get_span_context()
            conversation = (
                inv.response_attributes.get(semconv.GEN_AI_CONVERSATION_ID) or inv.conversation_id
            )
            last_call.set(CallRef(ctx.trace_id, ctx.span_id, inv.response_id, conversation))
        except Exception:
            count_internal_error("telemetry")
            _log.debug("remembering the call failed", exc_info=True)
        emit = functools.partial(self._end, inv, end_ns)
        if self.defer is not None and self.defer(emit):
            return
        try:
            emit()
        except Exception:  # a span processor that raised in span.end(): not the app's call's fault
            count_internal_error("telemetry")
            _log.debug("ending the call span failed", exc_info=True)

    def _end(self, inv: LLMInvocation, end_ns: int) -> None:
        """Record the outcome of an ended invocation and end its span."""
        span = inv.span
        assert span is not None
        try:
            if inv.output_parts:
                inv.outputs = ["".join(p) for p in inv.output_parts]
            if inv.tool_call_parts:
                inv.tool_calls = [(p[0], "".join(p[1:])) for p in inv.tool_call_parts]
            attrs, feats, check = self._outcome(inv)
            span.set_attributes(attrs)
            if inv.error_type:
                span.set_status(Status(StatusCode.ERROR, inv.error_type))
            if feats is not None:
                features.attach(span, feats)
            self._record_metrics(inv, end_ns, check, attrs)
        except Exception:
            count_internal_error("telemetry")
            _log.debug("recording the call outcome failed", exc_info=True)
        span.end(end_time=end_ns)

    def fail(self, inv: LLMInvocation, exc: BaseException) -> None:
        inv.error_type = type(exc).__qualname__
        if inv.span is not None and not inv.ended:
            try:
                record_exception(inv.span, exc, self.capture_content)
            except Exception:
                count_internal_error("telemetry")
        self.finish(inv)

    # -- what the span says ----------------------------------------------------------------
    def _outcome(
        self, inv: LLMInvocation
    ) -> tuple[dict[str, Any], Callable[[], CallFeatures] | None, fmt.FormatCheck | None]:
        a: dict[str, Any] = dict(inv.response_attributes)
        if inv.response_id:
            a[semconv.GEN_AI_RESPONSE_ID] = inv.response_id
        if inv.response_model:
            a[semconv.GEN_AI_RESPONSE_MODEL] = inv.response_model
        if inv.finish_reasons:
            a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(inv.finish_reasons)
        if inv.input_tokens is not None:
            a[semconv.GEN_AI_USAGE_INPUT_TOKENS] = inv.input_tokens
        if inv.output_tokens is not None:
            a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = inv.output_tokens
        if inv.cache_read_tokens is not None:
            a[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = inv.cache_read_tokens
        if inv.cache_creation_tokens is not None:
            a[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = inv.cache_creation_tokens
        if inv.error_type:
            a[semconv.ERROR_TYPE] = inv.error_type
        a[semconv.RETRY_COUNT] = inv.retries
        if inv.streaming:
            a[semconv.STREAM_ABANDONED] = inv.abandoned
            a[semconv.STREAM_CHUNKS] = inv.chunks
            if inv.first_chunk_ns is not None:
                a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (
                    inv.first_chunk_ns - inv.start_ns
                ) / 1e9
        if inv.operation not in semconv.LLM_OPERATIONS:
            return a, None, None
        signals, outputs, check = output_signals(inv, self._text_features)
        a.update(signals)
        if self.capture_content:
            self._content_attributes(inv, a)
        # the span needed the outputs' refusal cues now; the rest only the stages read, later
        return (
            a,
            functools.partial(call_features, inv, self._text_features, self.salt, outputs),
            check,
        )

    def _compute_text_features(self, text: str) -> TextFeatures:
        return textfeat.text_features(text, self.salt)

    def _content_attributes(self, inv: LLMInvocation, a: dict[str, Any]) -> None:
        limit = self.content_max_chars
        msgs = [
            {"role": r, "parts": [{"type": "text", "content": t[:limit]}]}
            for r, t in inv.messages
            if r not in ("system", "developer")
        ]
        a[semconv.GEN_AI_INPUT_MESSAGES] = json.dumps(msgs)
        system = inv.system_prompt()
        if system:
            a[semconv.GEN_AI_SYSTEM_INSTRUCTIONS] = json.dumps(
                [{"type": "text", "content": system[:limit]}]
            )
        outs = []
        for i, text in enumerate(inv.outputs or [""]):
            parts: list[dict[str, Any]] = (
                [{"type": "text", "content": text[:limit]}] if text else []
            )
            if i == 0:
                parts += [
                    {"type": "tool_call", "name": n, "arguments": (args or "")[:limit]}
                    for n, args in inv.tool_calls
                ]
            reason = inv.finish_reasons[i] if i < len(inv.finish_reasons) else None
            outs.append({"role": "assistant", "parts": parts, "finish_reason": reason})
        a[semconv.GEN_AI_OUTPUT_MESSAGES] = json.dumps(outs)

    def _record_metrics(
        self,
        inv: LLMInvocation,
        end_ns: int,
        check: fmt.FormatCheck | None,
        attrs: Mapping[str, Any],
    ) -> None:
        sets = self._call_metric_attributes(inv)
        self._duration.record((end_ns - inv.start_ns) / 1e9, sets.duration)
        if inv.input_tokens is not None:
            self._tokens.record(inv.input_tokens, sets.input_tokens)
        if inv.output_tokens is not None:
            self._tokens.record(inv.output_tokens, sets.output_tokens)
        if inv.first_chunk_ns is not None:
            self._ttfc.record((inv.first_chunk_ns - inv.start_ns) / 1e9, sets.base)
        if inv.retries:
            self._retries.add(
                inv.retries,
                {
                    semconv.METRIC_ATTR_PROVIDER: inv.provider,
                    semconv.METRIC_ATTR_MODEL: inv.request_model or "",
                },
            )
        if check is None:
            return
        route = inv.route
        if not route:
            # the route the drift stage infers, so both name the same stream
            system = inv.system_prompt()
            route = route_of(None if system is None else self._text_features(system).digest)
        stream = stream_name(inv.provider, inv.request_model, route)
        self._length.record(
            attrs.get(semconv.OUTPUT_CHARS, 0), {semconv.METRIC_ATTR_STREAM: stream}
        )
        if not check.valid:
            self._format_failures.add(
                1,
                {
                    semconv.METRIC_ATTR_STREAM: stream,
                    semconv.METRIC_ATTR_ERROR: check.error or "unknown",
                },
            )

    def _call_metric_attributes(self, inv: LLMInvocation) -> _CallMetricAttributes:
        """The attribute sets of the call's metric records, built once per identity and
        reused: calls to one model differ in none of them."""
        key = (
            inv.operation,
            inv.provider,
            inv.request_model,
            inv.server_address,
            inv.response_model,
            inv.error_type,
        )
        sets = self._metric_attributes.get(key)
        if sets is None:
            if len(self._metric_attributes) >= MAX_METRIC_ATTRIBUTE_SETS:
                self._metric_attributes.clear()
            base = _identity(inv)
            if inv.response_model:
                base[semconv.GEN_AI_RESPONSE_MODEL] = inv.response_model
            duration = dict(base)
            if inv.error_type:
                duration[semconv.ERROR_TYPE] = inv.error_type
            sets = self._metric_attributes[key] = _CallMetricAttributes(
                base,
                duration,
                {**base, semconv.GEN_AI_TOKEN_TYPE: "input"},
                {**base, semconv.GEN_AI_TOKEN_TYPE: "output"},
            )
        return sets


class _CallMetricAttributes(NamedTuple):
    """Attribute sets of one identity's call metrics; shared, so never changed."""

    base: Mapping[str, Any]
    duration: Mapping[str, Any]
    input_tokens: Mapping[str, Any]
    output_tokens: Mapping[str, Any]


def _identity(inv: LLMInvocation) -> dict[str, Any]:
    """Operation, provider, model and server: on the span and on every call metric."""
    attrs: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: inv.operation,
        semconv.GEN_AI_PROVIDER_NAME: inv.provider,
    }
    if inv.request_model:
        attrs[semconv.GEN_AI_REQUEST_MODEL] = inv.request_model
    if inv.server_address:
        attrs[semconv.SERVER_ADDRESS] = inv.server_address
    return attrs
