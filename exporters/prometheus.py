"""Metrics for Prometheus to scrape: a PrometheusMetricReader served on its own HTTP endpoint.

The reader gets a registry of its own, so the endpoint serves frictionlens' meter provider
only and never clashes with an app's own ``prometheus_client`` metrics. Shutting the reader
down (with the meter provider, at ``uninstrument()``) also closes the endpoint.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from frictionlens import semconv

try:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the Prometheus endpoint needs: pip install 'frictionlens[prometheus]'"
    ) from exc


class ServedPrometheusReader(PrometheusMetricReader):
    """A PrometheusMetricReader that owns the HTTP server exposing it at ``/metrics``."""

    def __init__(self, host: str, port: int) -> None:
        registry = CollectorRegistry()
        super().__init__(registry=registry)
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        super().shutdown(timeout_millis, **kwargs)
        self._server.shutdown()
        self._server.server_close()


def views() -> list[View]:
    """Explicit buckets for every frictionlens histogram.

    The Prometheus exporter cannot expose exponential histograms (a standard
    ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`` would otherwise turn them on);
    with no boundaries given, each histogram keeps the boundaries it advises.
    """
    return [
        View(
            instrument_type=Histogram,
            meter_name=semconv.SCOPE_NAME,
            aggregation=ExplicitBucketHistogramAggregation(),
        )
    ]
