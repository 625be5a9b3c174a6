"""The SignalPipeline: a span processor that runs the signal stages on finished spans.

Each stage reads a finished span (plus its own bounded state) and enriches it; the
enriched copy goes to the next stage and finally to the export stage (any SDK span
processor: a BatchSpanProcessor, a sampler in front of one, or the app's own processors).
Stages never do network I/O and never raise into the app: a failing stage is skipped for
that span and counted.

With ``background=True`` (what ``instrument()`` installs) ``on_end`` only queues the span
for a background worker (``processors/handoff.py``: queue, worker, tick, fork), so the app's
``span.end()`` does not wait for the stages and an app thread blocked on network I/O leaves
them the CPU. A span that finds the queue full skips the stages (counted) and is exported as
it is. ``force_flush`` and shutdown run what is queued first, so a flushed pipeline is
deterministic.

The instrumentation also hands over the end of each call (``submit``): reading the outcome,
recording call metrics and ``span.end()`` itself. A span ending where queued work runs goes
through the stages at once, in the order the app's threads handed the work over.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext
from opentelemetry.util.types import Attributes, AttributeValue

from frictionlens.features import record as _features
from frictionlens.features.record import CallFeatures, Pending
from frictionlens.health import count_internal_error
from frictionlens.processors.handoff import Handoff

_log = logging.getLogger(__name__)

#: spans waiting for the background worker, at most
MAX_QUEUED = 4096

Emit = Callable[[ReadableSpan], None]
"""Hands a span made by a stage (e.g. a conversation summary) to the export stage."""
_NO_ATTRIBUTES: Mapping[str, AttributeValue] = MappingProxyType({})


def span_attributes(span: ReadableSpan) -> Mapping[str, AttributeValue]:
    """The span's attributes (read only), as the plain dict the SDK keeps when it can be
    reached: the public property wraps them in a proxy over a Python-level mapping, several
    times slower per lookup (a missing key raises and catches inside), and the stages read
    many keys, most of them missing, on every span."""
    raw = getattr(span, "_attributes", None)
    if type(raw) is dict:  # a span built from a plain dict (e.g. decoded by the collector)
        return raw
    inner = getattr(raw, "_dict", None)
    return inner if type(inner) is dict else (span.attributes or _NO_ATTRIBUTES)


class SpanRecord:
    """A finished span on its way through the stages, with what they added so far.

    Reads see the added attributes first, then the span's own. ``to_span()`` builds the
    enriched copy only when something was added, so unenriched spans cost nothing.
    """

    __slots__ = ("span", "features", "attributes", "events")

    def __init__(self, span: ReadableSpan, features: CallFeatures | None = None) -> None:
        self.span = span
        self.features = features
        self.attributes: dict[str, AttributeValue] = {}
        self.events: list[Event] = []

    def get(self, key: str, default: object = None) -> object:
        if key in self.attributes:
            return self.attributes[key]
        return span_attributes(self.span).get(key, default)

    def merged(self) -> Mapping[str, AttributeValue]:
        """The span's attributes with the added ones over them (read only), in one plain
        dict for the many lookups of a stage."""
        own = span_attributes(self.span)
        return {**own, **self.attributes} if self.attributes else own

    def set(self, key: str, value: AttributeValue) -> None:
        self.attributes[key] = value

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        self.events.append(
            Event(name, attributes, timestamp or self.span.end_time or time.time_ns())
        )

    def to_span(self) -> ReadableSpan:
        """The enriched copy (the original span when no stage added anything)."""
        if not self.attributes and not self.events:
            return self.span
        return enriched_copy(self.span, self.attributes, self.events)


def enriched_copy(
    span: ReadableSpan,
    attributes: dict[str, AttributeValue],
    events: Sequence[Event] = (),
    context: SpanContext | None = None,
) -> ReadableSpan:
    """A copy of ``span`` with ``attributes`` and ``events`` added (and ``context`` instead of
    its own, when given)."""
    return ReadableSpan(
        name=span.name,
        context=context or span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={**span_attributes(span), **attributes},
        events=(*span.events, *events) if events else span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class Stage(Protocol):
    """One signal stage: friction, trajectory, drift, or a normalizer in front of them."""

    def process(self, record: SpanRecord, emit: Emit) -> None:
        """Read ``record`` (and own state), add attributes/events to it; may emit new spans."""

    def tick(self, now_ns: int, emit: Emit) -> None:
        """Expire idle state (e.g. close idle conversations). Called periodically."""

    def close(self, emit: Emit) -> None:
        """Flush all open state at shutdown (e.g. close every open conversation)."""


class SignalPipeline(SpanProcessor):
    """Span processor running ``stages`` in order, then handing spans to ``downstream``."""

    def __init__(
        self,
        stages: Iterable[Stage] = (),
        downstream: SpanProcessor | None = None,
        *,
        tick_interval_s: float = 5.0,
        background: bool = False,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.stages: list[Stage] = list(stages)
        self.downstream: SpanProcessor = downstream or SpanProcessor()
        self._lock = threading.RLock()
        """serialises the stages: they hold per-conversation / per-trace state"""
        self._closed = False
        self._background = background
        self._handoff: Handoff[Callable[[], None]] = Handoff(
            _run_all,
            name="frictionlens-pipeline",
            max_queued=max_queued,
            interval_s=tick_interval_s,
            tick=self._tick_stages,
        )
        """the worker: runs queued spans and handed-over work, and ticks the stages"""

    # -- SpanProcessor -------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.downstream.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        self.downstream._on_ending(span)  # pylint: disable=protected-access

    def on_end(self, span: ReadableSpan) -> None:
        feats = _features.pop(span)
        handoff = self._handoff
        if handoff.running_here():
            # a span ended by handed-over work (``submit``): its turn is now, and the stages
            # are still open while the queue drains at close
            self._process(span, feats)
            return
        if self._closed:
            self.downstream.on_end(span)
            return
        if not self._background:
            if self.stages:
                handoff.start()  # the ticks that expire stage state
            self._process(span, feats)
        elif not handoff.put(functools.partial(self._process, span, feats)):
            count_internal_error("pipeline_queue_full")  # it goes out without signals
            self._emit(span)

    def submit(self, work: Callable[[], None]) -> bool:
        """Run ``work`` off the calling thread, after everything queued before it (on the
        worker, or on a thread that flushes the pipeline).

        False when there is no worker, the pipeline is closed or the queue is full: the
        caller then does the work itself."""
        if not self._background or self._closed:
            return False
        return self._handoff.put(work)

    def _process(self, span: ReadableSpan, pending: Pending | None) -> None:
        """Run the stages on one finished span and hand the result to the export stage."""
        try:
            feats = _features.resolve(pending)
        except Exception:  # the stages still see the span's attributes
            count_internal_error("features")
            _log.debug("computing call features failed", exc_info=True)
            feats = None
        record = SpanRecord(span, feats)
        with self._lock:
            self._run_stages(record)
            try:
                out = record.to_span()
            except Exception:
                count_internal_error("pipeline")
                _log.debug("enriched copy failed", exc_info=True)
                out = span
        self._emit(out)

    def _run_stages(self, record: SpanRecord) -> None:
        """Every stage on ``record``, in order; the caller holds the lock."""
        for stage in self.stages:
            try:
                stage.process(record, self._emit)
            except Exception:  # never break the app for a signal
                count_internal_error(type(stage).__name__)
                _log.debug("stage %s failed", type(stage).__name__, exc_info=True)

    def process_batch(self, spans: Sequence[ReadableSpan]) -> list[SpanRecord]:
        """Run the stages on spans finished elsewhere (no in-process features), under one
        lock acquisition, and return their records instead of handing them on: for a caller
        that exports what the stages added itself (the collector appends it to the protobuf
        spans it received). Once the stages are closed the records stay empty."""
        records = [SpanRecord(span) for span in spans]
        if self._closed:
            return records
        self._handoff.start()
        with self._lock:
            for record in records:
                self._run_stages(record)
        return records

    def shutdown(self) -> None:
        self.close_stages()
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000.0
        drained = self._handoff.drain(timeout_millis / 1000.0)
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        return self.downstream.force_flush(left_ms) and drained

    # -- stage plumbing ------------------------------------------------------------------
    def add_stage(self, stage: Stage) -> None:
        with self._lock:
            self.stages.append(stage)

    def close_stages(self) -> None:
        """Flush every stage's open state (conversations, tasks) to the export stage."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # spans ending from now on skip the stages
        self._handoff.drain(30.0)  # the queued ones still go through them
        with self._lock:
            for stage in self.stages:
                try:
                    stage.close(self._emit)
                except Exception:
                    count_internal_error(type(stage).__name__)
                    _log.debug("stage %s close failed", type(stage).__name__, exc_info=True)
        self._handoff.stop()  # work handed over from now on is done by the caller

    def tick(self, now_ns: int | None = None) -> None:
        """Run what is queued (it may still extend what would expire), then let every stage
        expire idle state."""
        self._handoff.drain(self._handoff.interval_s)
        self._tick_stages(now_ns)

    def _tick_stages(self, now_ns: int | None = None) -> None:
        now_ns = now_ns or time.time_ns()
        with self._lock:
            for stage in self.stages:
                try:
                    stage.tick(now_ns, self._emit)
                except Exception:
                    count_internal_error(type(stage).__name__)
                    _log.debug("stage %s tick failed", type(stage).__name__, exc_info=True)

    def _emit(self, span: ReadableSpan) -> None:
        try:
            self.downstream.on_end(span)
        except Exception:
            count_internal_error("export")
            _log.debug("export of a span failed", exc_info=True)


def _run_all(work: list[Callable[[], None]]) -> None:
    """Run handed-over work in order; one failure does not stop the rest."""
    for item in work:
        try:
            item()
        except Exception:
            count_internal_error("pipeline")
            _log.debug("work handed to the pipeline failed", exc_info=True)
