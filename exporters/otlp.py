"""OTLP exporters chosen by the standard ``OTEL_EXPORTER_OTLP_*`` variables.

The exporters read endpoint, headers, certificates, compression and timeout from the
environment themselves; here we only pick the protocol, as the SDK's auto-configuration does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

DEFAULT_PROTOCOL = "http/protobuf"
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_TIMEOUT_S = 10.0
"""the OTLP exporters' own default"""


def endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(
        env.get(k)
        for k in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        )
    )


def protocol(signal: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = (
        (
            env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or DEFAULT_PROTOCOL
        )
        .strip()
        .lower()
    )
    if value not in PROTOCOLS:
        raise ValueError(
            f"unsupported OTLP protocol {value!r} for {signal}; use one of {', '.join(PROTOCOLS)}"
        )
    return value


def export_timeout_s(signal: str, environ: Mapping[str, str] | None = None) -> float:
    """How long an OTLP export of ``signal`` may take: ``OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT``,
    else ``OTEL_EXPORTER_OTLP_TIMEOUT``, in seconds as the Python exporters read them."""
    env = os.environ if environ is None else environ
    raw = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT") or env.get(
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    )
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def span_exporter(endpoint: str | None = None) -> SpanExporter:
    """``endpoint``: base URL overriding the environment's (``/v1/traces`` is added for HTTP)."""
    if protocol("traces") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return OTLPSpanExporter(**_endpoint("traces", endpoint))


def metric_exporter(endpoint: str | None = None) -> MetricExporter:
    """``endpoint``: as for ``span_exporter``."""
    if protocol("metrics") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
    return OTLPMetricExporter(**_endpoint("metrics", endpoint))


def _endpoint(signal: str, base: str | None) -> dict[str, str]:
    """The exporter's ``endpoint`` argument for a base URL (none: the exporter reads the environment)."""
    if base is None:
        return {}
    if protocol(signal) == "grpc":
        return {"endpoint": base}
    return {"endpoint": f"{base.rstrip('/')}/v1/{signal}"}
