"""The signal pipeline outside the app: OTLP in, the same SignalPipeline, OTLP out.

For apps that are not Python, apps instrumented by someone else, and fleets of replicas
that should share baselines. Received trace requests wait in a bounded queue (counted in
spans); when it is full the sender is told to retry later (HTTP 429 + Retry-After, gRPC
RESOURCE_EXHAUSTED + RetryInfo) instead of the collector growing without bound. One worker
decodes queued requests into SDK spans, runs them through the pipeline and exports each
batch synchronously, so a slow forward endpoint slows the worker, fills the queue and
pushes back on senders rather than dropping spans.

Spans that already carry our signals (enriched by an in-app pipeline) are forwarded
untouched: running them through the stages again would count their friction twice.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PBSpan
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from frictionlens import health, runtime, semconv
from frictionlens.collector.decode import pb_spans, readable_spans, span_fields
from frictionlens.collector.receiver import OTLPReceiver, Overloaded, Signal, TLSFiles
from frictionlens.config import Options
from frictionlens.exporters import otlp
from frictionlens.processors.meter import BatchingMeter
from frictionlens.processors.persistence import FILE_NAME as STATE_FILE
from frictionlens.processors.persistence import StateFile
from frictionlens.processors.pipeline import SignalPipeline, SpanRecord, span_attributes

__all__ = ["DEFAULT_QUEUE_SPANS", "Gateway", "collector_options", "is_enriched"]

_log = logging.getLogger(__name__)
_ENRICHED_MARKERS = frozenset(semconv.ENRICHED_MARKERS)

DEFAULT_QUEUE_SPANS = 8192
"""spans waiting for the pipeline before senders are asked to back off"""
RETRY_AFTER_S = 1.0
BATCH_SPANS = 2048
"""spans the worker takes from the queue, runs and exports as one OTLP request"""
IDLE_FLUSH_S = 0.5
"""how often an idle worker exports spans the stages emitted on their own (summaries)"""


def collector_options(**overrides: object) -> Options:
    """Options as for ``instrument()`` (every span kept unless ``FRICTIONLENS_SAMPLE_RATE``
    says otherwise), without instrumenting any SDK."""
    overrides.setdefault("providers", False)
    return Options.resolve(overrides)


def is_enriched(span: ReadableSpan) -> bool:
    """Whether an upstream SignalPipeline already ran on ``span``."""
    return not _ENRICHED_MARKERS.isdisjoint(span_attributes(span))


def _span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


class _SpanQueue:
    """Requests waiting for the pipeline, bounded by the spans they hold."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be at least 1 span")
        self.capacity = capacity
        self.spans = 0
        self._items: collections.deque[tuple[ExportTraceServiceRequest, int]] = collections.deque()
        self._changed = threading.Condition()
        self._closed = False

    def put(self, request: ExportTraceServiceRequest, count: int) -> None:
        """Queue ``request``; raises Overloaded when it does not fit (an empty queue takes any request)."""
        with self._changed:
            if self._closed:
                raise Overloaded("collector is shutting down", RETRY_AFTER_S)
            if self.spans and self.spans + count > self.capacity:
                raise Overloaded(
                    f"collector queue full ({self.spans} of {self.capacity} spans waiting); retry later",
                    RETRY_AFTER_S,
                )
            self._items.append((request, count))
            self.spans += count
            self._changed.notify()

    def take(self, max_spans: int, timeout: float) -> list[ExportTraceServiceRequest] | None:
        """Requests holding up to ``max_spans`` spans (at least one request when any waits);
        [] after ``timeout`` with nothing queued; None once closed and drained."""
        with self._changed:
            if not self._items:
                if self._closed:
                    return None
                self._changed.wait(timeout)
            taken: list[ExportTraceServiceRequest] = []
            total = 0
            while self._items and (not taken or total + self._items[0][1] <= max_spans):
                request, count = self._items.popleft()
                taken.append(request)
                total += count
            self.spans -= total
            return taken

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class _Forwarder(SpanProcessor):
    """The export stage: collects spans and exports them when the worker says so.

    Export is synchronous on the worker's thread (the exporter retries on its own), which is
    what turns a slow forward endpoint into back-pressure on senders. With a gRPC exporter,
    spans that came in a request go out as that request's protobuf, with only what the
    stages added merged in: re-encoding every attribute of every span would cost more than
    the whole pipeline. Other spans (conversation summaries, spans a sampler held back) are
    encoded by the SDK.
    """

    def __init__(self, exporter: SpanExporter | None, count: _Counter) -> None:
        self._exporter = exporter
        self._send_raw = _raw_sender(exporter)
        self._count = count
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._origins: dict[int, tuple[PBSpan, ReadableSpan, set[int], int]] = {}
        self._requests: list[tuple[ExportTraceServiceRequest, set[int] | None]] = []
        """requests to send as received, with the positions of the spans passed on (None: all)"""
        self._forwarded = 0
        self._pending: list[ReadableSpan] = []

    def forward(
        self,
        request: ExportTraceServiceRequest,
        spans: Sequence[ReadableSpan],
        records: Sequence[SpanRecord | None],
    ) -> None:
        """Pass on every span of ``request`` (decoded as ``spans``) with what the stages added
        to it (``records``, aligned with ``spans``; None for a span that skipped them)."""
        if self._send_raw is None:
            out = [
                span if record is None else record.to_span() for span, record in zip(spans, records)
            ]
            with self._lock:
                self._pending.extend(out)
            return
        for pb, record in zip(pb_spans(request), records):
            if record is not None and (record.attributes or record.events):
                _append_additions(
                    pb, span_attributes(record.span), record.attributes, record.events
                )
        with self._lock:
            self._requests.append((request, None))
            self._forwarded += len(spans)

    def adopt(self, request: ExportTraceServiceRequest, spans: Sequence[ReadableSpan]) -> None:
        """Remember where ``spans`` (decoded from ``request``) came from, to send the ones the
        export stage passes on (``on_end``) as they came."""
        if self._send_raw is None:
            return
        kept: set[int] = set()
        with self._lock:
            self._requests.append((request, kept))
            for i, (span, pb) in enumerate(zip(spans, pb_spans(request))):
                self._origins[id(span.context)] = (pb, span, kept, i)

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            origin = self._origins.pop(id(span.context), None)
            if origin is None:
                self._pending.append(span)
                return
            pb, original, kept, i = origin
            kept.add(i)
            self._forwarded += 1
        if span is not original:
            _append_additions(
                pb,
                span_attributes(original),
                span_attributes(span),
                span.events[len(original.events) :],
            )

    def flush(self) -> None:
        with self._export_lock:
            with self._lock:
                requests, forwarded, pending = self._requests, self._forwarded, self._pending
                self._requests, self._forwarded, self._pending = [], 0, []
                self._origins.clear()  # spans a sampler holds come back later, without origin
            count = forwarded + len(pending)
            if not count or self._exporter is None:
                return
            try:
                if self._send_raw is None:
                    ok = self._exporter.export(pending) is SpanExportResult.SUCCESS
                else:
                    for request, kept in requests:
                        if kept is not None:
                            _drop_unkept(request, kept)
                    # the first request carries the rest: extending copies, so copy least
                    out = requests[0][0] if requests else ExportTraceServiceRequest()
                    for request, _ in requests[1:]:
                        out.resource_spans.extend(request.resource_spans)
                    if pending:
                        out.resource_spans.extend(encode_spans(pending).resource_spans)
                    ok = self._send_raw(out)
            except Exception:
                _log.debug("span export failed", exc_info=True)
                ok = False
            if not ok:
                self._count(semconv.COLLECTOR_EXPORT_FAILED, count)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flush()
        return True

    def shutdown(self) -> None:
        self.flush()
        if self._exporter is not None:
            self._exporter.shutdown()


def _raw_sender(
    exporter: SpanExporter | None,
) -> Callable[[ExportTraceServiceRequest], bool] | None:
    """Send an encoded request through the SDK's gRPC exporter (its retries, headers, TLS).

    The exporter translates spans with ``_translate_data``; given a request it has nothing
    to translate. None for other exporters: they get SDK spans.
    """
    translate = getattr(exporter, "_translate_data", None)
    export = getattr(exporter, "_export", None)
    if exporter is None or translate is None or export is None:
        return None
    exporter._translate_data = lambda request: request  # type: ignore[attr-defined]  # pylint: disable=protected-access
    exporter._count_data = _span_count  # type: ignore[attr-defined]  # pylint: disable=protected-access
    return lambda request: export(request) is SpanExportResult.SUCCESS


def _append_additions(
    pb: PBSpan, before: Mapping[str, Any], attributes: Mapping[str, Any], events: Sequence[Event]
) -> None:
    """Add to ``pb`` (whose attributes were ``before``) the ``attributes`` that are new or
    changed, and ``events``."""
    added = {k: v for k, v in attributes.items() if k not in before or before[k] != v}
    if not added and not events:
        return
    if not before.keys().isdisjoint(added):  # a stage replaced a sender's value
        kept = [kv for kv in pb.attributes if kv.key not in added]
        del pb.attributes[:]
        pb.attributes.extend(kept)
    pb.MergeFromString(span_fields(added, events))


def _drop_unkept(request: ExportTraceServiceRequest, kept: set[int]) -> None:
    """Remove the spans of ``request`` (by position, in ``pb_spans`` order) that the export
    stage did not pass on (sampled out, or held for later)."""
    if len(kept) == _span_count(request):
        return
    i = 0
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            keep = []
            for pb in ss.spans:
                if i in kept:
                    keep.append(PBSpan.FromString(pb.SerializeToString()))
                i += 1
            del ss.spans[:]
            ss.spans.extend(keep)


class _Counter:
    """Adds to the ``frictionlens.collector.spans`` counter, and keeps the totals readable."""

    def __init__(self, meter_provider: MeterProvider) -> None:
        from frictionlens import __version__

        meter = meter_provider.get_meter(semconv.SCOPE_NAME, __version__)
        self.meter = meter
        self._metric = meter.create_counter(
            semconv.METRIC_COLLECTOR_SPANS,
            unit="{span}",
            description="Spans the collector handled, by outcome",
        )
        self.totals: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, outcome: str, n: int) -> None:
        if n:
            with self._lock:
                self.totals[outcome] += n
            self._metric.add(n, {semconv.METRIC_ATTR_OUTCOME: outcome})


class Gateway:
    """``frictionlens collector``: an OTLPReceiver feeding a SignalPipeline that forwards over OTLP.

    ``forward``: base URL of the next hop (gRPC or HTTP by ``OTEL_EXPORTER_OTLP_PROTOCOL``);
    None uses what the ``OTEL_EXPORTER_OTLP_*`` variables name, else the ``options`` exporter
    (the local store by default). ``persist``: keep learned baselines in
    ``options.data_dir`` across restarts, as the in-app pipeline does.
    """

    def __init__(
        self,
        *,
        grpc_endpoint: str | None = "127.0.0.1:4317",
        http_endpoint: str | None = "127.0.0.1:4318",
        forward: str | None = None,
        bearer_token: str | None = None,
        tls: TLSFiles | None = None,
        queue_spans: int = DEFAULT_QUEUE_SPANS,
        options: Options | None = None,
        persist: bool = False,
    ) -> None:
        self.options = options or collector_options()
        self._queue = _SpanQueue(queue_spans)
        self.receiver = OTLPReceiver(
            self._receive,
            grpc_endpoint=grpc_endpoint,
            http_endpoint=http_endpoint,
            signals=("traces",),
            bearer_token=bearer_token,
            tls=tls,
        )
        reader = self._metric_reader(forward)
        self.meter_provider = MeterProvider(
            resource=Resource.create(), metric_readers=[reader] if reader else []
        )
        self._count = _Counter(self.meter_provider)
        self._meter = meter = BatchingMeter(self._count.meter)
        meter.create_observable_gauge(
            semconv.METRIC_COLLECTOR_QUEUE,
            [self._observe_queue],
            unit="{span}",
            description="Spans waiting between the receiver and the pipeline",
        )
        exporter = otlp.span_exporter(forward) if forward else runtime._span_exporter(self.options)  # pylint: disable=protected-access
        self._forwarder = _Forwarder(exporter, self._count)
        stages = runtime.build_stages(self.options, meter, self.options.salt_bytes())
        self._persistent = runtime.persistent_stages(stages) if persist else {}
        if self._persistent:
            StateFile(self.options.data_dir / STATE_FILE).restore_stages(self._persistent)
        self.pipeline = SignalPipeline(
            stages, runtime.sampled(self._forwarder, self.options, meter)
        )
        self._worker: threading.Thread | None = None
        self._stopped = False

    def _metric_reader(self, forward: str | None) -> MetricReader | None:
        """Interval from ``OTEL_METRIC_EXPORT_INTERVAL``, as in the app."""
        if forward:
            return PeriodicExportingMetricReader(otlp.metric_exporter(forward))
        return runtime._metric_reader(self.options)  # pylint: disable=protected-access

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Gateway:
        health.bind_meter(self._meter)
        self._worker = threading.Thread(
            target=self._work, name="frictionlens-collector", daemon=True
        )
        self._worker.start()
        self.receiver.start()
        return self

    def stop(self) -> None:
        """Stop receiving, run everything queued through the pipeline, close open
        conversations, export it all (spans and metrics) and save learned state."""
        if self._stopped:
            return
        self._stopped = True
        self.receiver.stop()
        self._queue.close()
        if self._worker is not None:
            self._worker.join()
        self.pipeline.close_stages()
        if self._persistent:
            StateFile(self.options.data_dir / STATE_FILE).save_stages(self._persistent)
        self.pipeline.shutdown()
        self._meter.flush()
        self.meter_provider.shutdown()
        health.bind_meter(None)

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def totals(self) -> dict[str, int]:
        """Spans handled so far, by outcome (the ``frictionlens.collector.spans`` counter)."""
        return dict(self._count.totals)

    # -- receive -> queue -> pipeline ----------------------------------------------------
    def _receive(self, signal: Signal, message: Message) -> None:
        assert isinstance(message, ExportTraceServiceRequest), signal
        count = _span_count(message)
        if not count:
            return
        try:
            self._queue.put(message, count)
        except Overloaded:
            self._count(semconv.COLLECTOR_REFUSED, count)
            raise

    def _observe_queue(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._queue.spans)]

    def _work(self) -> None:
        while True:
            requests = self._queue.take(BATCH_SPANS, IDLE_FLUSH_S)
            if requests is None:
                return
            self._handle(requests)

    def _handle(self, requests: Sequence[ExportTraceServiceRequest]) -> None:
        """One batch: every request through the pipeline, then one export."""
        for request in requests:
            try:
                self._run(request)
            except Exception:  # a request we cannot decode must not stop the worker
                health.count_internal_error("collector")
                _log.debug("collector could not process a request", exc_info=True)
        self._forwarder.flush()

    def _run(self, request: ExportTraceServiceRequest) -> None:
        spans = readable_spans(request)
        enriched = [is_enriched(span) for span in spans]
        passed = sum(enriched)
        if (
            self.pipeline.downstream is self._forwarder
        ):  # no sampler: the stages' records go straight out
            records = iter(
                self.pipeline.process_batch([s for s, e in zip(spans, enriched) if not e])
            )
            self._forwarder.forward(
                request, spans, [None if e else next(records) for e in enriched]
            )
        else:
            self._forwarder.adopt(request, spans)
            for span, e in zip(spans, enriched):
                if e:
                    self._forwarder.on_end(span)
                else:
                    self.pipeline.on_end(span)
        self._count(semconv.COLLECTOR_PASSED_THROUGH, passed)
        self._count(semconv.COLLECTOR_PROCESSED, len(spans) - passed)
