"""The SignalPipeline: a span processor that runs the signal stages on finished spans.

Each stage reads a finished span (plus its own bounded state) and enriches it; the
enriched copy goes to the next stage and finally to the export stage (any SDK span
processor: a BatchSpanProcessor, a sampler in front of one, or the app's own processors).
Stages never do network I/O and never raise into the app: a failing stage is skipped for
that span and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, Protocol, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue, Attributes

from frictionlens.processors import features as _features
from frictionlens.processors.features import CallFeatures
from frictionlens.health import count_internal_error

_log = logging.getLogger(__name__)

Emit = Callable[[ReadableSpan], None]
"""Hands a span made by a stage (e.g. a conversation summary) to the export stage."""


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
        attrs = self.span.attributes
        if attrs is None:
            return default
        return attrs.get(key, default)

    def set(self, key: str, value: AttributeValue) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        self.events.append(Event(name, attributes, timestamp or self.span.end_time or time.time_ns()))

    def to_span(self) -> ReadableSpan:
        """The enriched copy (the original span when no stage added anything)."""
        if not self.attributes and not self.events:
            return self.span
        return enriched_copy(self.span, self.attributes, self.events)


def enriched_copy(span: ReadableSpan, attributes: dict[str, AttributeValue], events: Sequence[Event] = ()) -> ReadableSpan:
    merged = dict(span.attributes or {})
    merged.update(attributes)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=merged,
        events=tuple(span.events) + tuple(events),
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
    ) -> None:
        self.stages: list[Stage] = list(stages)
        self.downstream: SpanProcessor = downstream or SpanProcessor()
        self._lock = threading.RLock()
        self._tick_interval_s = tick_interval_s
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._closed = False

    # -- SpanProcessor -------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.downstream.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        self.downstream._on_ending(span)  # pylint: disable=protected-access

    def on_end(self, span: ReadableSpan) -> None:
        feats = _features.pop(span)
        if self._closed:
            self.downstream.on_end(span)
            return
        self._ensure_ticker()
        record = SpanRecord(span, feats)
        # Stages hold per-conversation / per-trace state: serialise them.
        with self._lock:
            for stage in self.stages:
                try:
                    stage.process(record, self._emit)
                except Exception:  # never break the app for a signal
                    count_internal_error(type(stage).__name__)
                    _log.debug("stage %s failed", type(stage).__name__, exc_info=True)
            try:
                out = record.to_span()
            except Exception:
                count_internal_error("pipeline")
                _log.debug("enriched copy failed", exc_info=True)
                out = span
        self.downstream.on_end(out)

    def shutdown(self) -> None:
        self.close_stages()
        self._stop.set()
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.downstream.force_flush(timeout_millis)

    # -- stage plumbing ------------------------------------------------------------------
    def add_stage(self, stage: Stage) -> None:
        with self._lock:
            self.stages.append(stage)

    def close_stages(self) -> None:
        """Flush every stage's open state (conversations, tasks) to the export stage."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for stage in self.stages:
                try:
                    stage.close(self._emit)
                except Exception:
                    count_internal_error(type(stage).__name__)
                    _log.debug("stage %s close failed", type(stage).__name__, exc_info=True)

    def tick(self, now_ns: int | None = None) -> None:
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
            _log.debug("export of an emitted span failed", exc_info=True)

    def _ensure_ticker(self) -> None:
        if self._ticker is not None or not self.stages:
            return
        with self._lock:
            if self._ticker is not None:
                return
            self._ticker = threading.Thread(target=self._tick_loop, name="frictionlens-ticker", daemon=True)
            self._ticker.start()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._tick_interval_s):
            self.tick()
