"""Signal-based sampling (opt-in): every span of what needs review, a known fraction of the rest.

``SignalSampler`` wraps the export stage's span processor. A span that carries
``frictionlens.review.needed = true`` flags its trace and its conversation
(``frictionlens.conversation.id``, else ``gen_ai.conversation.id``); a span with a drift
event flags its trace. Every span of a flagged trace or conversation is exported, the ones
held back before the flag included, and so is every conversation summary span.

Every other span is held until its fate is known: its trace or conversation gets flagged,
its conversations all end unflagged (their summary spans pass), it was held long enough
(``conversation_hold_s`` when its trace has an LLM conversation, as long as a conversation
waits idle before it ends; ``hold_s`` otherwise), the buffer is full, or the sampler shuts
down. Then OpenTelemetry's consistent probability
sampling decides ("TraceState: Probability Sampling"): with ``R`` the 56-bit randomness of
the trace (the ``rv`` sub-key of the ``ot`` tracestate entry, else the trace id's low 56
bits) and ``T = 2^56 - round(rate * 2^56)``, the span is kept when ``R >= T``. Kept spans
say so in their tracestate, ``ot=th:<T>`` (hex, trailing zeros dropped), so any backend
reads the probability ``(2^56 - T) / 2^56`` and counts each span as ``1 / probability``;
flagged and summary spans carry ``th:0`` (probability 1). A span that arrives already
sampled upstream keeps the larger threshold of the two. Every span of a trace gets the same
decision, in this process or in another one sampling at the same rate.

Why unflagged spans are held even when the trace is inside the sampled fraction: exported at
once with ``th:T``, a span whose conversation is flagged a turn later would count as
``1 / rate`` calls although every call of that conversation is kept, and the counts of
flagged conversations (where the friction is) would come out too high. Deciding once the
flag can no longer change what happens to the span keeps every adjusted count true.

Memory is bounded: at most ``max_spans`` spans are held (beyond that the oldest held trace
is decided early), and at most ``max_keys`` flagged traces and conversations are
remembered, each for ``keep_s``. Every decision is counted, per span, in ``stats()`` and in
the metric ``frictionlens.sampling.spans`` (attribute ``decision``).

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
from opentelemetry.trace import SpanContext, TraceState

from frictionlens import semconv
from frictionlens.processors.pipeline import enriched_copy

RANDOMNESS_BITS = 56
MAX_THRESHOLD = 1 << RANDOMNESS_BITS
"""the threshold of probability 0; ``0`` is probability 1"""
_RANDOMNESS_MASK = MAX_THRESHOLD - 1
_HEX_DIGITS = RANDOMNESS_BITS // 4
_SCAN_NS = 1_000_000_000
_TH = semconv.TRACESTATE_THRESHOLD + ":"
_RV = semconv.TRACESTATE_RANDOMNESS + ":"


# -- the OpenTelemetry tracestate encoding ---------------------------------------------------
def threshold(probability: float) -> int:
    """The rejection threshold of a sampling probability: keep when randomness >= it."""
    return MAX_THRESHOLD - round(probability * MAX_THRESHOLD)


def probability(th: int) -> float:
    return (MAX_THRESHOLD - th) / MAX_THRESHOLD


def encode_threshold(th: int) -> str:
    """``th`` sub-key value: 14 hex digits with the trailing zeros dropped (``0``: probability 1)."""
    return f"{th:014x}".rstrip("0") or "0"


def _hex(value: str, exact_length: bool) -> int | None:
    if not value or len(value) > _HEX_DIGITS or (exact_length and len(value) != _HEX_DIGITS):
        return None
    try:
        parsed = int(value, 16)
    except ValueError:
        return None
    return parsed << 4 * (_HEX_DIGITS - len(value))


def ot_sampling(trace_state: TraceState | None) -> tuple[int | None, int | None]:
    """(threshold, explicit randomness) from the ``ot`` tracestate entry; None where absent or invalid."""
    value = trace_state.get(semconv.TRACESTATE_OT) if trace_state else None
    if not value:
        return None, None
    th = rv = None
    for member in value.split(";"):
        if member.startswith(_TH):
            th = _hex(member[len(_TH) :], exact_length=False)
        elif member.startswith(_RV):
            rv = _hex(member[len(_RV) :], exact_length=True)
    return th, rv


def threshold_of(trace_state_header: str) -> int | None:
    """The ``th`` a span was kept at, from its W3C ``tracestate`` header value; None without
    one (or with an invalid one, or probability 0, which no kept span can have)."""
    if not trace_state_header or semconv.TRACESTATE_OT not in trace_state_header:
        return None
    th, _ = ot_sampling(TraceState.from_header([trace_state_header]))
    return None if th is None or th >= MAX_THRESHOLD else th


def adjusted_count(trace_state_header: str) -> float:
    """How many spans one exported span stands for: ``1 / probability`` of its ``th``; 1
    without one."""
    th = threshold_of(trace_state_header)
    return 1.0 if th is None else 1.0 / probability(th)


def with_threshold(span: ReadableSpan, th: int) -> ReadableSpan:
    """A copy of ``span`` whose tracestate says it was kept at threshold ``th``."""
    ctx = span.context
    trace_state = ctx.trace_state or TraceState()
    members = [
        m for m in (trace_state.get(semconv.TRACESTATE_OT) or "").split(";") if m and m[:3] != _TH
    ]
    value = ";".join([_TH + encode_threshold(th), *members])
    trace_state = (
        trace_state.update(semconv.TRACESTATE_OT, value)
        if semconv.TRACESTATE_OT in trace_state
        else trace_state.add(semconv.TRACESTATE_OT, value)
    )
    context = SpanContext(ctx.trace_id, ctx.span_id, ctx.is_remote, ctx.trace_flags, trace_state)
    return enriched_copy(span, {}, context=context)


# -- the sampler -----------------------------------------------------------------------------
class _Held:
    __slots__ = ("first_ns", "spans", "conversations", "conversational")

    def __init__(self, first_ns: int) -> None:
        self.first_ns = first_ns
        self.spans: list[ReadableSpan] = []
        self.conversations: set[str] = set()
        """conversations of its spans that have not ended yet"""
        self.conversational = False
        """whether any of its spans belongs to a conversation (the longer hold applies)"""


#: (span, threshold to write, decision)
_Out = tuple[ReadableSpan, int, str]


class SignalSampler(SpanProcessor):
    """Span processor in front of ``downstream``: keeps flagged traces and conversations whole,
    and the fraction ``rate`` of the rest, each span marked with the probability it was kept at."""

    def __init__(
        self,
        downstream: SpanProcessor,
        *,
        rate: float,
        hold_s: float = 300.0,
        conversation_hold_s: float = 1800.0,
        max_spans: int = 10_000,
        keep_s: float = 7200.0,
        max_keys: int = 100_000,
        meter: metrics.Meter | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        self.downstream = downstream
        self.rate = rate
        self.threshold = threshold(rate)
        self._hold_ns = int(hold_s * 1e9)
        self._conversation_hold_ns = int(conversation_hold_s * 1e9)
        self._next_scan_ns = 0
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
        if ctx is None:
            self.downstream.on_end(span)
            return
        attrs = span.attributes or {}
        conv = attrs.get(semconv.CONVERSATION_ID) or attrs.get(semconv.GEN_AI_CONVERSATION_ID)
        conv = None if conv is None else str(conv)
        review = attrs.get(semconv.REVIEW_NEEDED) is True
        summary = span.name == semconv.CONVERSATION_SPAN
        drift = not review and any(e.name == semconv.DRIFT_EVENT for e in span.events)
        trace_id = ctx.trace_id
        now = time.time_ns()
        out: list[_Out] = []
        dropped: Counter[str] = Counter()
        with self._lock:
            if now >= self._next_scan_ns:
                self._expire(now, out, dropped)
            if review or drift:
                self._flag(trace_id, conv if review else None, now, out)
                out.append((span, 0, semconv.SAMPLING_KEPT_FLAGGED))
            elif trace_id in self._kept_traces or (
                conv is not None and conv in self._kept_conversations
            ):
                self._flag(trace_id, None, now, out)
                out.append((span, 0, semconv.SAMPLING_KEPT_FLAGGED))
            elif summary:
                out.append((span, 0, semconv.SAMPLING_KEPT_SUMMARY))
                if conv is not None:
                    self._conversation_ended(conv, out, dropped)
            elif self.threshold == 0:  # everything is inside the fraction: nothing to wait for
                out.append((span, 0, semconv.SAMPLING_KEPT_SAMPLED))
            else:
                self._hold(span, trace_id, conv, now, out, dropped)
        self._emit(out, dropped)

    def shutdown(self) -> None:
        out: list[_Out] = []
        dropped: Counter[str] = Counter()
        with self._lock:
            while self._held:
                self._decide(next(iter(self._held)), semconv.SAMPLING_DROPPED, out, dropped)
        self._emit(out, dropped)
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        out: list[_Out] = []
        dropped: Counter[str] = Counter()
        with self._lock:
            self._expire(time.time_ns(), out, dropped)
        self._emit(out, dropped)
        return self.downstream.force_flush(timeout_millis)

    # -- introspection -------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Spans per decision so far, and ``held``: spans waiting for a decision now."""
        with self._lock:
            out = dict(self._counts)
            out["held"] = self._held_spans
        return out

    # -- decisions (under the lock) ------------------------------------------------------
    def _flag(self, trace_id: int, conv: str | None, now: int, out: list[_Out]) -> None:
        """Keep ``trace_id`` (and ``conv``) from now on, with whatever of them is held."""
        self._remember(self._kept_traces, trace_id, now)
        self._release(trace_id, out)
        if conv is None:
            return
        self._remember(self._kept_conversations, conv, now)
        for held_trace in list(self._held_by_conversation.get(conv, ())):
            self._remember(self._kept_traces, held_trace, now)
            self._release(held_trace, out)

    def _release(self, trace_id: int, out: list[_Out]) -> None:
        if trace_id in self._held:
            out.extend((s, 0, semconv.SAMPLING_RELEASED) for s in self._forget(trace_id))

    def _conversation_ended(self, conv: str, out: list[_Out], dropped: Counter[str]) -> None:
        """Its held traces can no longer be flagged through it: decide those it was the last open
        conversation of."""
        for trace_id in self._held_by_conversation.pop(conv, ()):
            held = self._held.get(trace_id)
            if held is None:
                continue
            held.conversations.discard(conv)
            if not held.conversations:
                self._decide(trace_id, semconv.SAMPLING_DROPPED, out, dropped)

    def _decide(self, trace_id: int, rejected: str, out: list[_Out], dropped: Counter[str]) -> None:
        """Consistent probability sampling on a held trace: kept spans with their threshold."""
        for span in self._forget(trace_id):
            ctx = span.context
            upstream, rv = ot_sampling(ctx.trace_state)
            th = max(upstream or 0, self.threshold)
            randomness = rv if rv is not None else ctx.trace_id & _RANDOMNESS_MASK
            if randomness >= th:
                out.append((span, th, semconv.SAMPLING_KEPT_SAMPLED))
            else:
                dropped[rejected] += 1

    def _hold(
        self,
        span: ReadableSpan,
        trace_id: int,
        conv: str | None,
        now: int,
        out: list[_Out],
        dropped: Counter[str],
    ) -> None:
        held = self._held.get(trace_id)
        if held is None:
            held = self._held[trace_id] = _Held(now)
        held.spans.append(span)
        self._held_spans += 1
        if conv is not None and conv not in held.conversations:
            held.conversations.add(conv)
            held.conversational = True
            self._held_by_conversation.setdefault(conv, set()).add(trace_id)
        while self._held_spans > self._max_spans and self._held:
            self._decide(next(iter(self._held)), semconv.SAMPLING_DROPPED_OVERFLOW, out, dropped)

    def _expire(self, now: int, out: list[_Out], dropped: Counter[str]) -> None:
        """Decide held traces past their hold time; forget kept keys past theirs. A scan of
        what is held: at most once a second from ``on_end``."""
        self._next_scan_ns = now + _SCAN_NS
        for trace_id, held in list(self._held.items()):
            hold = self._conversation_hold_ns if held.conversational else self._hold_ns
            if now - held.first_ns >= hold:
                self._decide(trace_id, semconv.SAMPLING_DROPPED, out, dropped)
        for kept in (self._kept_traces, self._kept_conversations):
            while kept and next(iter(kept.values())) <= now:
                kept.popitem(last=False)

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
    def _emit(self, out: list[_Out], dropped: Counter[str]) -> None:
        """Forward the kept spans, marked, in order, and count every decision (outside the lock)."""
        decided: Counter[str] = Counter(dropped)
        for span, th, decision in out:
            upstream, _ = ot_sampling(span.context.trace_state)
            self.downstream.on_end(with_threshold(span, max(upstream or 0, th)))
            decided[decision] += 1
        if not decided:
            return
        with self._lock:
            self._counts.update(decided)
        for decision, n in decided.items():
            self._metric.add(n, {semconv.METRIC_ATTR_DECISION: decision})
