"""The embedded default: a local store of OTLP/JSON lines, one file per signal.

The format is the OpenTelemetry Collector file exporter's (one ExportTraceServiceRequest /
ExportMetricsServiceRequest per line), so ``frictionlens report`` reads either, and any tool
that reads that exporter's output reads ours.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from frictionlens.exporters.otlp_json import parse, to_json_line

TRACES_FILE = "traces.jsonl"
METRICS_FILE = "metrics.jsonl"


class _LineWriter:
    """Appends whole lines; one lock so concurrent exports never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, line: str) -> bool:
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            return True
        except OSError:
            return False


class FileSpanExporter(SpanExporter):
    def __init__(self, data_dir: str | os.PathLike[str], *, file_name: str = TRACES_FILE) -> None:
        self._out = _LineWriter(Path(data_dir) / file_name)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        ok = self._out.write(to_json_line(encode_spans(spans)))
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class FileMetricExporter(MetricExporter):
    """Cumulative metrics, like a scrape: each line is the state at that export."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self._out = _LineWriter(Path(data_dir) / METRICS_FILE)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs
    ) -> MetricExportResult:
        if not metrics_data.resource_metrics:
            return MetricExportResult.SUCCESS
        ok = self._out.write(to_json_line(encode_metrics(metrics_data)))
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        pass


def _lines(path: Path) -> Iterator[str]:
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                yield line


def traces_file(path: str | os.PathLike[str]) -> Path:
    """The traces file of a data dir, or ``path`` itself when it is not a dir."""
    p = Path(path)
    return p / TRACES_FILE if p.is_dir() else p


def read_traces(path: str | os.PathLike[str]) -> Iterator[ExportTraceServiceRequest]:
    """Requests from a traces file (or a data dir); malformed lines are skipped."""
    for line in _lines(traces_file(path)):
        try:
            yield parse(line, ExportTraceServiceRequest())
        except ValueError:
            continue


def read_traces_from(
    path: str | os.PathLike[str], offset: int = 0
) -> Iterator[tuple[ExportTraceServiceRequest, int]]:
    """(request, byte offset past its line) for each complete line of a traces file (or a data
    dir's) past byte ``offset``: the last offset is where to read a growing file on from. A line
    still being written is left for the next read; malformed lines are skipped."""
    try:
        fh = open(traces_file(path), "rb")
    except FileNotFoundError:
        return
    with fh:
        fh.seek(offset)
        for line in fh:
            if not line.endswith(b"\n"):
                return
            offset += len(line)
            if line.strip():
                try:
                    yield (
                        parse(line.decode("utf-8", "replace"), ExportTraceServiceRequest()),
                        offset,
                    )
                except ValueError:
                    continue


def read_metrics(path: str | os.PathLike[str]) -> Iterator[ExportMetricsServiceRequest]:
    p = Path(path)
    for line in _lines(p / METRICS_FILE if p.is_dir() else p):
        try:
            yield parse(line, ExportMetricsServiceRequest())
        except ValueError:
            continue


__all__ = [
    "FileMetricExporter",
    "FileSpanExporter",
    "METRICS_FILE",
    "TRACES_FILE",
    "read_metrics",
    "read_traces",
    "read_traces_from",
    "traces_file",
]
