"""Signal-based sampling: export every span of what needs review, and a fraction of the rest.

``SignalSampler`` wraps the export stage's span processor. A span that carries
``frictionlens.review.needed = true`` flags its trace and its conversation
(``frictionlens.conversation.id``, else ``gen_ai.conversation.id``): every span of a flagged
trace or conversation is exported, including the ones held back before the flag arrived.
Of the other traces, a fixed fraction (``rate``, default 10%) is exported as it ends,
chosen deterministically by trace id exactly as OpenTelemetry's ``TraceIdRatioBased``
sampler chooses (so head- and tail-sampled parts of a system agree). The spans of the
remaining traces are held for up to ``hold_s`` in case a flag follows (friction usually
shows a turn or two after the call it concerns), then dropped.

Memory is bounded: at most ``max_spans`` spans are held (beyond that the oldest held trace
is dropped early), and at most ``max_keys`` flagged traces and conversations are
remembered, each for ``keep_s``. Every decision is counted, per span, in ``stats()`` and
in the metric ``frictionlens.sampling.spans`` (attribute ``decision``).

The same policy in an OpenTelemetry Collector (``tail_sampling`` processor, per trace;
conversations spanning several traces keep only their flagged traces there)::

    processors:
      tail_sampling:
        decision_wait: 300s
        num_traces: 100000
        policies:
          - name: review-needed
            type: boolean_attribute
            boolean_attribute: {key: frictionlens.review.needed, value: true}
          - name: baseline
            type: probabilistic
            probabilistic: {sampling_percentage: 10}
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from frictionlens import semconv

_TRACE_ID_LOW = (1 << 64) - 1


class _Held:
    __slots__ = ("first_ns", "spans", "conversations")

    def __init__(self, first_ns: int) -> None:
        self.first_ns = first_ns
        self.spans: list[ReadableSpan] = []
        self.conversations: set[str] = set()


class SignalSampler(SpanProcessor):
    """Span processor in front of ``downstream``: keeps flagged traces and conversations, samples the rest."""

    def __init__(
        self,
        downstream: SpanProcessor,
        *,
        rate: float = 0.1,
        hold_s: float = 300.0,
        max_spans: int = 10_000,
        keep_s: float = 7200.0,
        max_keys: int = 100_000,
        meter: metrics.Meter | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        self.downstream = downstream
        self.rate = rate
        self._bound = round(rate * (1 << 64))
        self._hold_ns = int(hold_s * 1e9)
        self._keep_ns = int(keep_s * 1e9)
        self._max_spans = max_spans
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._held: OrderedDict[int, _Held] = OrderedDict()
        self._held_spans = 0
        self._held_by_conversation: dict[str, set[int]] = {}
        self._kept_traces: OrderedDict[int, int] = OrderedDict()  # trace id -> expiry (ns)
        self._kept_conversations: OrderedDict[str, int] = OrderedDict()
        self._counts: Counter[str] = Counter()
        from frictionlens import __version__

        meter = meter or metrics.get_meter(semconv.SCOPE_NAME, __version__)
        self._metric = meter.create_counter(
            semconv.METRIC_SAMPLING_SPANS,
            unit="{span}",
            description="Spans kept, released or dropped by signal-based sampling",
        )

    # -- SpanProcessor -------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.downstream.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        self.downstream._on_ending(span)  # pylint: disable=protected-access

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or self._bound >= 1 << 64:
            self._forward([span], semconv.SAMPLING_KEPT_SAMPLED)
            return
        attrs = span.attributes or {}
        conv = attrs.get(semconv.CONVERSATION_ID) or attrs.get(semconv.GEN_AI_CONVERSATION_ID)
        conv = None if conv is None else str(conv)
        now = time.time_ns()
        released: list[ReadableSpan] = []
        overflow = 0
        with self._lock:
            dropped = self._expire(now)
            trace_id = ctx.trace_id
            if attrs.get(semconv.REVIEW_NEEDED) is True:
                decision = semconv.SAMPLING_KEPT_FLAGGED
                self._remember(self._kept_traces, trace_id, now)
                released += self._release_trace(trace_id)
                if conv is not None:
                    self._remember(self._kept_conversations, conv, now)
                    for held_trace in list(self._held_by_conversation.get(conv, ())):
                        self._remember(self._kept_traces, held_trace, now)
                        released += self._release_trace(held_trace)
            elif trace_id in self._kept_traces or (
                conv is not None and conv in self._kept_conversations
            ):
                decision = semconv.SAMPLING_KEPT_FLAGGED
                self._remember(self._kept_traces, trace_id, now)
                released += self._release_trace(trace_id)
            elif (trace_id & _TRACE_ID_LOW) < self._bound:
                decision = semconv.SAMPLING_KEPT_SAMPLED
            else:
                decision = None
                overflow = self._hold(span, trace_id, conv, now)
        self._count(semconv.SAMPLING_DROPPED, dropped)
        self._count(semconv.SAMPLING_DROPPED_OVERFLOW, overflow)
        if released:
            self._forward(released, semconv.SAMPLING_RELEASED)
        if decision is not None:
            self._forward([span], decision)

    def shutdown(self) -> None:
        with self._lock:
            dropped = self._held_spans
            self._held.clear()
            self._held_by_conversation.clear()
            self._held_spans = 0
        self._count(semconv.SAMPLING_DROPPED, dropped)
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            dropped = self._expire(time.time_ns())
        self._count(semconv.SAMPLING_DROPPED, dropped)
        return self.downstream.force_flush(timeout_millis)

    # -- introspection -------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Spans per decision so far, and ``held``: spans waiting for a decision now."""
        with self._lock:
            out = dict(self._counts)
            out["held"] = self._held_spans
        return out

    # -- internals (under the lock) ------------------------------------------------------
    def _hold(self, span: ReadableSpan, trace_id: int, conv: str | None, now: int) -> int:
        """Hold ``span``; returns how many held spans the cap made drop early."""
        held = self._held.get(trace_id)
        if held is None:
            held = self._held[trace_id] = _Held(now)
        held.spans.append(span)
        self._held_spans += 1
        if conv is not None and conv not in held.conversations:
            held.conversations.add(conv)
            self._held_by_conversation.setdefault(conv, set()).add(trace_id)
        overflow = 0
        while self._held_spans > self._max_spans and self._held:
            overflow += len(self._forget(next(iter(self._held))))
        return overflow

    def _expire(self, now: int) -> int:
        """Drop held traces past their hold time (returns their spans' count); forget kept keys past theirs."""
        dropped = 0
        while self._held:
            trace_id, held = next(iter(self._held.items()))
            if now - held.first_ns < self._hold_ns:
                break
            dropped += len(self._forget(trace_id))
        for kept in (self._kept_traces, self._kept_conversations):
            while kept and next(iter(kept.values())) <= now:
                kept.popitem(last=False)
        return dropped

    def _release_trace(self, trace_id: int) -> list[ReadableSpan]:
        return self._forget(trace_id) if trace_id in self._held else []

    def _forget(self, trace_id: int) -> list[ReadableSpan]:
        held = self._held.pop(trace_id)
        self._held_spans -= len(held.spans)
        for conv in held.conversations:
            traces = self._held_by_conversation.get(conv)
            if traces is not None:
                traces.discard(trace_id)
                if not traces:
                    del self._held_by_conversation[conv]
        return held.spans

    def _remember(self, kept: OrderedDict, key: object, now: int) -> None:
        kept[key] = now + self._keep_ns
        kept.move_to_end(key)
        while len(kept) > self._max_keys:
            kept.popitem(last=False)

    # -- output --------------------------------------------------------------------------
    def _forward(self, spans: list[ReadableSpan], decision: str) -> None:
        for span in spans:
            self.downstream.on_end(span)
        self._count(decision, len(spans))

    def _count(self, decision: str, n: int) -> None:
        if not n:
            return
        with self._lock:
            self._counts[decision] += n
        self._metric.add(n, {semconv.METRIC_ATTR_DECISION: decision})
