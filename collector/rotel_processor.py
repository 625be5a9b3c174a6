"""The signal pipeline as a rotel trace processor (``rotel start --otlp-with-trace-processor <this file>``).

rotel (a Rust OTLP collector) runs this module in the system Python it links against, not
in a virtualenv: list the site-packages that hold frictionlens and its dependencies in
``FRICTIONLENS_ROTEL_SITE`` (``os.pathsep``-separated). Each span runs through the same
stages as in the app and in ``frictionlens collector``; what they add is appended to the
span's attributes. Limits: the stages' metrics, evaluation events and conversation summary
spans are not exported from here (rotel takes spans back only as edits of the batch it
passed in), and an exception escaping ``process_spans`` stops the agent, so every failure
is caught and counted.
"""

from __future__ import annotations

import os
import site
from typing import Any

for _dir in os.environ.get("FRICTIONLENS_ROTEL_SITE", "").split(os.pathsep):
    if _dir:
        site.addsitedir(_dir)

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor  # noqa: E402

from frictionlens import runtime, semconv  # noqa: E402
from frictionlens.collector.decode import readable_spans, to_any_value  # noqa: E402
from frictionlens.collector.gateway import collector_options, is_enriched  # noqa: E402
from frictionlens.health import count_internal_error  # noqa: E402
from frictionlens.processors.pipeline import SignalPipeline  # noqa: E402

_SCALARS = (str, bool, int, float, bytes)


class _Collect(SpanProcessor):
    """Keeps the pipeline's output spans of the current batch, by their context."""

    def __init__(self) -> None:
        self.out: dict[int, ReadableSpan] = {}

    def on_end(self, span: ReadableSpan) -> None:
        self.out[id(span.context)] = span


def _pipeline() -> tuple[SignalPipeline, _Collect]:
    from frictionlens import __version__

    options = collector_options()
    meter = MeterProvider().get_meter(semconv.SCOPE_NAME, __version__)
    collect = _Collect()
    return SignalPipeline(
        runtime.build_stages(options, meter, options.salt_bytes()), collect
    ), collect


_PIPELINE, _COLLECT = _pipeline()


def _attrs(key_values: Any) -> list[Any]:
    return [(kv.key, kv.value.value) for kv in key_values if isinstance(kv.value.value, _SCALARS)]


def _as_protobuf(resource_spans: Any) -> ExportTraceServiceRequest:
    """The rotel batch as an OTLP request (scalar attributes only: all the stages read)."""
    rs = ResourceSpans()
    for key, value in _attrs(resource_spans.resource.attributes if resource_spans.resource else ()):
        rs.resource.attributes.add(key=key, value=to_any_value(value))
    for rotel_scope in resource_spans.scope_spans:
        ss = rs.scope_spans.add()
        if rotel_scope.scope is not None:
            ss.scope.name, ss.scope.version = (
                rotel_scope.scope.name or "",
                rotel_scope.scope.version or "",
            )
        for s in rotel_scope.spans:
            pb = Span(
                trace_id=s.trace_id,
                span_id=s.span_id,
                parent_span_id=s.parent_span_id or b"",
                name=s.name,
                kind=s.kind,
                start_time_unix_nano=s.start_time_unix_nano,
                end_time_unix_nano=s.end_time_unix_nano,
            )
            for key, value in _attrs(s.attributes):
                pb.attributes.add(key=key, value=to_any_value(value))
            if s.status is not None:
                pb.status.code, pb.status.message = int(s.status.code), s.status.message or ""
            ss.spans.append(pb)
    return ExportTraceServiceRequest(resource_spans=[rs])


def _new_key_value(key: str, value: Any) -> Any:
    from rotel_sdk.open_telemetry.common.v1 import KeyValue

    if isinstance(value, bool):
        return KeyValue.new_bool_value(key, value)
    if isinstance(value, int):
        return KeyValue.new_int_value(key, value)
    if isinstance(value, float):
        return KeyValue.new_double_value(key, value)
    return KeyValue.new_string_value(key, str(value))


def _process(resource_spans: Any) -> None:
    spans = readable_spans(_as_protobuf(resource_spans))
    rotel_spans = [s for ss in resource_spans.scope_spans for s in ss.spans]
    _COLLECT.out.clear()
    for span in spans:
        if not is_enriched(span):
            _PIPELINE.on_end(span)
    for span, target in zip(spans, rotel_spans):
        out = _COLLECT.out.get(id(span.context))
        if out is None or out is span:
            continue
        before = span.attributes or {}
        for key, value in (out.attributes or {}).items():
            if key not in before and isinstance(value, _SCALARS):
                target.attributes.append(_new_key_value(key, value))
    _COLLECT.out.clear()


def process_spans(resource_spans: Any) -> None:
    """rotel's hook: enrich one ResourceSpans batch in place."""
    try:
        _process(resource_spans)
    except Exception:  # an exception escaping here stops the rotel agent
        count_internal_error("rotel")
