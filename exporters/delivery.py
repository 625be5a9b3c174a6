"""The export stage's batch processor, with every span it fails to deliver counted.

Like OpenTelemetry's ``BatchSpanProcessor`` (same options, same ``OTEL_BSP_*`` variables) it
never blocks the app: spans wait in a bounded queue for a background thread that exports them in
batches, and a full queue or a batch the exporter gives up on (backend down, slow past the
timeout, 5xx, 429, reset connections) loses spans. The SDK's processor only logs those losses;
this one counts them in ``frictionlens.export.dropped`` (attribute ``reason``: ``queue_full`` or
``export_failed``) and in ``stats()``, so an outage shows up as a number once export resumes. As
in the SDK, a full queue drops its oldest span. The queue and its thread are the pipeline's
(``processors/handoff.py``): a batch is exported when ``max_export_batch_size`` spans wait,
every ``schedule_delay_millis``, and on ``force_flush`` (by the flushing thread).

At shutdown (interpreter exit included) it exports what is queued, waiting at most
``shutdown_timeout_s`` (the exporter's own timeout): a backend that is down costs the exit
that long and no more. What is still unsent then, or ends after shutdown, is counted (reason
``shutdown``), and one warning says how many spans were lost and how long was waited.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from frictionlens import semconv
from frictionlens.processors.handoff import Handoff

_log = logging.getLogger(__name__)

QUEUED = "queued"
"""``stats()`` key: spans that entered the queue"""
EXPORTED = "exported"
"""``stats()`` key: spans the exporter took"""
_DROPS = (
    semconv.EXPORT_DROPPED_QUEUE_FULL,
    semconv.EXPORT_DROPPED_FAILED,
    semconv.EXPORT_DROPPED_SHUTDOWN,
)


class _CountingExporter(SpanExporter):
    def __init__(self, exporter: SpanExporter, counted: Callable[[str, int], None]) -> None:
        self.exporter = exporter
        self._counted = counted
        self.closed = False
        """set once shutdown's time ran out: what is unsent was counted then, so later
        batches are refused at once and counted no more"""
        self._shut_down = False
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.closed:
            return SpanExportResult.FAILURE
        try:
            result = self.exporter.export(spans)
        except Exception:  # an exporter that raises lost the batch all the same
            result = SpanExportResult.FAILURE
        if not self.closed:
            ok = result is SpanExportResult.SUCCESS
            self._counted(EXPORTED if ok else semconv.EXPORT_DROPPED_FAILED, len(spans))
        return result

    def shutdown(self) -> None:
        """Once: a second shutdown makes the OTLP exporters log a warning."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def _option(given: int | None, env: str, default: int) -> int:
    """An explicit option, else its ``OTEL_BSP_*`` variable, else the SDK's default."""
    if given is not None:
        return given
    try:
        value = int(os.environ.get(env, default))
    except ValueError:
        value = default
    return value if value > 0 else default


class CountedBatchSpanProcessor(SpanProcessor):
    """A batch span processor (the ``BatchSpanProcessor`` options) that counts drops and
    bounds its shutdown."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        meter: metrics.Meter | None = None,
        shutdown_timeout_s: float = 10.0,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._stats: Counter[str] = Counter()
        self.shutdown_timeout_s = shutdown_timeout_s
        self._shut_down = False
        meter = meter or metrics.get_meter(semconv.SCOPE_NAME)
        self._dropped = meter.create_counter(
            semconv.METRIC_EXPORT_DROPPED,
            unit="{span}",
            description="spans the export stage could not deliver",
        )
        self._exporter = _CountingExporter(exporter, self._count)
        queue_size = _option(max_queue_size, OTEL_BSP_MAX_QUEUE_SIZE, 2048)
        self.max_export_batch_size = min(
            queue_size, _option(max_export_batch_size, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512)
        )
        delay_ms = _option(
            None if schedule_delay_millis is None else int(schedule_delay_millis),
            OTEL_BSP_SCHEDULE_DELAY,
            5000,
        )
        # the exporter applies its own timeout (OTEL_EXPORTER_OTLP_TIMEOUT); kept for the
        # BatchSpanProcessor's signature
        del export_timeout_millis
        self._handoff: Handoff[ReadableSpan] = Handoff(
            self._export,
            name="frictionlens-export",
            max_queued=queue_size,
            interval_s=delay_ms / 1000.0,
            wake_at=self.max_export_batch_size,
            on_drop=lambda span: self._count(semconv.EXPORT_DROPPED_QUEUE_FULL, 1),
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        self._count(QUEUED, 1)
        if not self._handoff.put(span):  # shut down: nothing will export it
            self._count(semconv.EXPORT_DROPPED_SHUTDOWN, 1)

    def _export(self, spans: list[ReadableSpan]) -> None:
        size = self.max_export_batch_size
        for i in range(0, len(spans), size):
            self._exporter.export(spans[i : i + size])

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._handoff.drain(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        """Export what is queued within ``shutdown_timeout_s``; count and say what is not."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            before = dict(self._stats)
        start = time.monotonic()
        # a batch on a down backend waits the exporter's timeout, and the queue holds many:
        # on a helper thread, the exit waits no longer than we do
        helper = threading.Thread(
            target=self._handoff.stop,
            args=(self.shutdown_timeout_s,),
            name="frictionlens-export-shutdown",
            daemon=True,
        )
        try:
            helper.start()
        except RuntimeError:  # no new threads in an exit hook (Python 3.12.1): the export
            # that is under way when the time runs out still finishes
            self._handoff.stop(self.shutdown_timeout_s)
        else:
            helper.join(self.shutdown_timeout_s)
        waited = time.monotonic() - start
        with self._lock:
            self._exporter.closed = True
            stats = dict(self._stats)
        unsent = (
            stats.get(QUEUED, 0) - stats.get(EXPORTED, 0) - sum(stats.get(r, 0) for r in _DROPS)
        )
        if unsent > 0:
            self._count(semconv.EXPORT_DROPPED_SHUTDOWN, unsent)
            stats[semconv.EXPORT_DROPPED_SHUTDOWN] = (
                stats.get(semconv.EXPORT_DROPPED_SHUTDOWN, 0) + unsent
            )
        self._exporter.shutdown()  # also stops the retries of an export still under way
        lost = {r: stats.get(r, 0) - before.get(r, 0) for r in _DROPS}
        if any(lost.values()):
            earlier = sum(before.get(r, 0) for r in _DROPS)
            _log.warning(
                "frictionlens: %d span(s) not exported at shutdown (%s) after waiting %.1f s "
                "(export timeout %g s)%s",
                sum(lost.values()),
                ", ".join(f"{r} {n}" for r, n in lost.items() if n),
                waited,
                self.shutdown_timeout_s,
                f"; {earlier} more were lost earlier" if earlier else "",
            )

    def _count(self, what: str, n: int) -> None:
        with self._lock:
            self._stats[what] += n
        if what in _DROPS:
            self._dropped.add(n, {semconv.METRIC_ATTR_REASON: what})

    def stats(self) -> dict[str, int]:
        """Spans ``queued`` and ``exported``, and dropped per reason (``queue_full``,
        ``export_failed``, ``shutdown``)."""
        with self._lock:
            return dict(self._stats)
