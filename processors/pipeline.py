"""The SignalPipeline: a span processor that runs the signal stages on finished spans.

Each stage reads a finished span (plus its own bounded state) and enriches it; the
enriched copy goes to the next stage and finally to the export stage (any SDK span
processor: a BatchSpanProcessor, a sampler in front of one, or the app's own processors).
Stages never do network I/O and never raise into the app: a failing stage is skipped for
that span and counted.

With ``background=True`` (what ``instrument()`` installs) ``on_end`` only queues the span:
a worker thread runs the stages and the export stage, so the app's ``span.end()`` does not
wait for them and an app thread blocked on network I/O leaves them the CPU. The worker
takes spans in batches (it waits ``BATCH_DELAY_S`` after the first): under the GIL each
wake-up of another thread costs the app thread a hand-off, so one per batch, not one per
span. The queue is bounded; a span that finds it full skips the stages (counted) and is
exported as it is. ``force_flush`` and shutdown drain the queue first, so a flushed
pipeline is deterministic.

The instrumentation also hands the worker the end of each call (``submit``): reading the
outcome, recording call metrics and ``span.end()`` itself. A span ending on the worker goes
through the stages at once, in the order the app's threads handed the work over.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import Attributes, AttributeValue

from frictionlens.features import record as _features
from frictionlens.features.record import CallFeatures, Pending
from frictionlens.health import count_internal_error

_log = logging.getLogger(__name__)

#: spans waiting for the background worker, at most
MAX_QUEUED = 4096
#: how long the background worker lets a batch gather after its first span (a flush, or a
#: half-full queue, cuts it short)
BATCH_DELAY_S = 0.2

Emit = Callable[[ReadableSpan], None]
"""Hands a span made by a stage (e.g. a conversation summary) to the export stage."""
_Work = tuple[ReadableSpan, Pending | None] | Callable[[], None] | None
"""what the worker's queue holds: a finished span, work handed over, or the stop mark"""


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
        attrs = self.span.attributes
        if attrs is None:
            return default
        return attrs.get(key, default)

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
    span: ReadableSpan, attributes: dict[str, AttributeValue], events: Sequence[Event] = ()
) -> ReadableSpan:
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
        background: bool = False,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.stages: list[Stage] = list(stages)
        self.downstream: SpanProcessor = downstream or SpanProcessor()
        self._lock = threading.RLock()
        self._tick_interval_s = tick_interval_s
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._closed = False
        self._queue: queue.Queue[_Work] | None = queue.Queue(max_queued) if background else None
        self._worker: threading.Thread | None = None
        self._wake = threading.Event()
        if background and hasattr(os, "register_at_fork"):
            reinit = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(
                after_in_child=lambda: (method := reinit()) is not None and method()
            )

    # -- SpanProcessor -------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.downstream.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        self.downstream._on_ending(span)  # pylint: disable=protected-access

    def on_end(self, span: ReadableSpan) -> None:
        feats = _features.pop(span)
        if self._queue is not None and threading.current_thread() is self._worker:
            # a span the worker ended itself (``submit``): its turn is now, and the stages
            # are still open while the worker drains at close
            if not self._closed:
                self._ensure_ticker()
            self._process(span, feats)
            return
        if self._closed:
            self.downstream.on_end(span)
            return
        self._ensure_ticker()
        if self._queue is None:
            self._process(span, feats)
        elif not self._put((span, feats)):  # the stages cannot keep up: it goes out without signals
            count_internal_error("pipeline_queue_full")
            self._emit(span)

    def submit(self, work: Callable[[], None]) -> bool:
        """Run ``work`` on the background worker, after everything queued before it.

        False when there is no worker, the pipeline is closed or the queue is full: the
        caller then does the work itself."""
        if self._queue is None or self._closed:
            return False
        return self._put(work)

    def _put(self, item: _Work) -> bool:
        q = self._queue
        assert q is not None
        self._ensure_worker()
        try:
            q.put_nowait(item)
        except queue.Full:
            return False
        if q.qsize() * 2 >= q.maxsize:
            self._wake.set()
        return True

    def _process(self, span: ReadableSpan, pending: Pending | None) -> None:
        """Run the stages on one finished span and hand the result to the export stage."""
        try:
            feats = _features.resolve(pending)
        except Exception:  # the stages still see the span's attributes
            count_internal_error("features")
            _log.debug("computing call features failed", exc_info=True)
            feats = None
        record = SpanRecord(span, feats)
        # Stages hold per-conversation / per-trace state: serialise them.
        with self._lock:
            self._run_stages(record)
            try:
                out = record.to_span()
            except Exception:
                count_internal_error("pipeline")
                _log.debug("enriched copy failed", exc_info=True)
                out = span
        self.downstream.on_end(out)

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
        self._ensure_ticker()
        with self._lock:
            for record in records:
                self._run_stages(record)
        return records

    def shutdown(self) -> None:
        self.close_stages()
        self._stop.set()
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000.0
        drained = self._drain(timeout_millis / 1000.0)
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        return self.downstream.force_flush(left_ms) and drained

    # -- background worker -----------------------------------------------------------------
    def _drain(self, timeout_s: float) -> bool:
        """Wait until the worker has processed every queued span; False on timeout."""
        q = self._queue
        if q is None or self._worker is None or threading.current_thread() is self._worker:
            return True
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with q.all_tasks_done:
            while q.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                q.all_tasks_done.wait(left)
        return True

    def _ensure_worker(self) -> None:
        if self._worker is not None:
            return
        with self._lock:
            if self._worker is None:
                worker = threading.Thread(
                    target=self._work, name="frictionlens-pipeline", daemon=True
                )
                worker.start()
                self._worker = worker

    def _stop_worker(self) -> None:
        worker = self._worker
        if (
            self._queue is not None
            and worker is not None
            and worker is not threading.current_thread()
        ):
            self._queue.put(None)  # the stop mark, after everything queued
            self._wake.set()
            worker.join(timeout=30)
            while True:  # a span queued while the stages closed goes out as it is
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if callable(item):
                    self._run(item)
                elif item is not None:
                    self._emit(item[0])
                self._queue.task_done()

    @staticmethod
    def _run(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:
            count_internal_error("pipeline")
            _log.debug("work handed to the pipeline failed", exc_info=True)

    def _after_fork(self) -> None:
        """A forked child has none of the parent's threads: start afresh, lazily."""
        self._lock = threading.RLock()
        if self._queue is not None:
            self._queue = queue.Queue(self._queue.maxsize)
        self._wake = threading.Event()
        self._worker = None
        self._ticker = None

    def _work(self) -> None:
        q = self._queue
        assert q is not None
        while True:
            batch = [q.get()]  # idle until there is work
            self._wake.wait(BATCH_DELAY_S)
            self._wake.clear()
            while True:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                try:
                    if callable(item):
                        item()
                    elif item is not None:
                        self._process(*item)
                except Exception:  # _process guards each stage; this guards the export stage
                    count_internal_error("pipeline")
                    _log.debug("pipeline worker failed on a span", exc_info=True)
                finally:
                    q.task_done()
            if batch[-1] is None:  # the stop mark comes last
                return

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
        self._drain(30.0)  # the queued ones still go through them
        with self._lock:
            for stage in self.stages:
                try:
                    stage.close(self._emit)
                except Exception:
                    count_internal_error(type(stage).__name__)
                    _log.debug("stage %s close failed", type(stage).__name__, exc_info=True)
        self._stop_worker()  # spans ending from now on go straight to the export stage

    def tick(self, now_ns: int | None = None) -> None:
        now_ns = now_ns or time.time_ns()
        self._drain(self._tick_interval_s)  # a queued span may still extend what would expire
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
            self._ticker = threading.Thread(
                target=self._tick_loop, name="frictionlens-ticker", daemon=True
            )
            self._ticker.start()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._tick_interval_s):
            self.tick()
