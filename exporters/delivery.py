"""The export stage's batch processor, with every span it fails to deliver counted.

OpenTelemetry's ``BatchSpanProcessor`` never blocks the app: a full queue drops its oldest
span, and a batch the exporter gives up on (backend down, slow past the timeout, 5xx, 429,
reset connections) is lost. Both only reach a log line. ``CountedBatchSpanProcessor`` counts
them in ``frictionlens.export.dropped`` (attribute ``reason``: ``queue_full`` or
``export_failed``) and in ``stats()``, so an outage shows up as a number once export resumes.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from frictionlens import semconv

QUEUED = "queued"
"""``stats()`` key: spans that entered the queue"""


class _CountingQueue(deque):  # type: ignore[type-arg]
    """The batch queue, bounded under a lock so each span pushed out is counted exactly once."""

    def __init__(self, maxlen: int, counted: Callable[[str, int], None]) -> None:
        super().__init__((), maxlen)
        self._lock = threading.Lock()
        self._counted = counted

    def appendleft(self, item: Any) -> None:
        with self._lock:
            full = len(self) == self.maxlen
            super().appendleft(item)
        self._counted(QUEUED, 1)
        if full:
            self._counted(semconv.EXPORT_DROPPED_QUEUE_FULL, 1)

    def pop(self) -> Any:
        with self._lock:
            return super().pop()


class _CountingExporter(SpanExporter):
    def __init__(self, exporter: SpanExporter, counted: Callable[[str, int], None]) -> None:
        self.exporter = exporter
        self._counted = counted

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:  # an exporter that raises lost the batch all the same
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._counted(semconv.EXPORT_DROPPED_FAILED, len(spans))
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class CountedBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` (same options, same ``OTEL_BSP_*`` variables) that counts drops."""

    def __init__(
        self, exporter: SpanExporter, *, meter: metrics.Meter | None = None, **options: Any
    ) -> None:
        self._lock = threading.Lock()
        self._stats: Counter[str] = Counter()
        meter = meter or metrics.get_meter(semconv.SCOPE_NAME)
        self._dropped = meter.create_counter(
            semconv.METRIC_EXPORT_DROPPED,
            unit="{span}",
            description="spans the export stage could not deliver",
        )
        super().__init__(_CountingExporter(exporter, self._count), **options)
        batch = getattr(self, "_batch_processor", None)
        queue = getattr(batch, "_queue", None)
        if isinstance(queue, deque) and queue.maxlen:  # the SDK's queue, a bounded deque
            batch._queue = _CountingQueue(queue.maxlen, self._count)  # type: ignore[union-attr]

    def _count(self, what: str, n: int) -> None:
        with self._lock:
            self._stats[what] += n
        if what != QUEUED:
            self._dropped.add(n, {semconv.METRIC_ATTR_REASON: what})

    def stats(self) -> dict[str, int]:
        """Spans ``queued``, and dropped per reason (``queue_full``, ``export_failed``)."""
        with self._lock:
            return dict(self._stats)
