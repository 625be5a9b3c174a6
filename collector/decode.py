"""OTLP export requests as SDK spans (for the signal pipeline) and as plain Python values.

The receiver hands on requests exactly as they arrived; the SignalPipeline works on SDK
``ReadableSpan``s, while reports and tests want plain values (hex ids, enum names, tuples
for arrays). Every AnyValue, id and enum conversion lives here, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    InstrumentationScope as PBScope,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PBResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PBSpan
from opentelemetry.proto.trace.v1.trace_pb2 import SpanFlags
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from frictionlens import semconv as sc

__all__ = [
    "any_value",
    "attributes",
    "friction_kinds",
    "key_values",
    "log_records",
    "metric_points",
    "pb_spans",
    "readable_spans",
    "span_dict",
    "span_dicts",
    "span_fields",
    "to_any_value",
]

# OTLP numbers span kinds from SPAN_KIND_UNSPECIFIED = 0; the SDK from INTERNAL = 0.
_KINDS = {
    PBSpan.SPAN_KIND_UNSPECIFIED: SpanKind.INTERNAL,
    PBSpan.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    PBSpan.SPAN_KIND_SERVER: SpanKind.SERVER,
    PBSpan.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    PBSpan.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    PBSpan.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}
_SCALARS = frozenset(("string_value", "bool_value", "int_value", "double_value", "bytes_value"))
_STATUS = {code.value: code for code in StatusCode}
# immutable, so shared by every decoded span
_PLAIN_STATUS = {code: Status(code) for code in (StatusCode.UNSET, StatusCode.OK)}
_FLAGS = tuple(TraceFlags(flags) for flags in range(256))
_EMPTY_TRACE_STATE = TraceState()
_TEMPORALITY = {
    AggregationTemporality.AGGREGATION_TEMPORALITY_UNSPECIFIED: "unspecified",
    AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: "delta",
    AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative",
}
_METRIC_TYPES = {
    "sum": "sum",
    "gauge": "gauge",
    "histogram": "histogram",
    "exponential_histogram": "exp_histogram",
    "summary": "summary",
}


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue: arrays become tuples, kvlists dicts, unset None."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind in _SCALARS:
        return getattr(value, kind)
    # unset, or a dictionary index that only means something inside a profiles request
    return None


def attributes(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    out = {}
    for kv in key_values:  # every attribute of every span received: scalars inline
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in _SCALARS else any_value(value)
    return out


def to_any_value(value: Any) -> AnyValue:
    """The OTLP AnyValue of a Python attribute value (the inverse of ``any_value``)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    if value is None:
        return AnyValue()
    return AnyValue(array_value=ArrayValue(values=[to_any_value(v) for v in value]))


def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=to_any_value(v)) for k, v in attrs.items()]


@lru_cache(maxsize=4096, typed=True)
def _attribute_field(key: str, value: Any) -> bytes:
    """One ``Span.attributes`` entry, serialised. What the stages add is mostly a few
    recurring values (flags, scores, stream names, conversation ids), so it is cached."""
    return PBSpan(attributes=[KeyValue(key=key, value=to_any_value(value))]).SerializeToString()


def span_fields(attrs: Mapping[str, Any], events: Iterable[Event] = ()) -> bytes:
    """``attrs`` and ``events`` as serialised ``Span`` fields: merged into a span
    (``MergeFromString``), they are appended to its attributes and events."""
    parts = []
    for key, value in attrs.items():
        try:
            parts.append(_attribute_field(key, value))
        except TypeError:  # unhashable (a list): not cached
            parts.append(_attribute_field.__wrapped__(key, value))
    events = [
        PBSpan.Event(
            name=e.name, time_unix_nano=e.timestamp, attributes=key_values(e.attributes or {})
        )
        for e in events
    ]
    if events:
        parts.append(PBSpan(events=events).SerializeToString())
    return b"".join(parts)


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


# --- traces -----------------------------------------------------------------------------
def _resource(pb: PBResource, schema_url: str) -> Resource:
    return Resource(attributes(pb.attributes), schema_url or None)


def _scope(pb: PBScope, schema_url: str) -> InstrumentationScope:
    return InstrumentationScope(
        pb.name, pb.version or None, schema_url or None, attributes(pb.attributes)
    )


def _is_remote(flags: int) -> bool:
    known = flags & SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
    return bool(known and flags & SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)


def _trace_state(header: str) -> TraceState:
    return TraceState.from_header([header]) if header else _EMPTY_TRACE_STATE


def _span(pb: PBSpan, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    trace_id = int.from_bytes(pb.trace_id, "big")
    pb_flags = pb.flags
    # A span that was exported was recorded, so it counts as sampled here: SDK span
    # processors (and so the export stage behind the pipeline) drop unsampled spans.
    flags = _FLAGS[(pb_flags & 0xFF) | TraceFlags.SAMPLED]
    context = SpanContext(
        trace_id, int.from_bytes(pb.span_id, "big"), False, flags, _trace_state(pb.trace_state)
    )
    parent_id = pb.parent_span_id
    parent = (
        SpanContext(trace_id, int.from_bytes(parent_id, "big"), _is_remote(pb_flags))
        if parent_id
        else None
    )
    pb_status = pb.status
    code = _STATUS.get(pb_status.code, StatusCode.UNSET)
    # The SDK keeps a description only on ERROR (and warns otherwise): pass it only then.
    status = (
        Status(code, pb_status.message or None) if code is StatusCode.ERROR else _PLAIN_STATUS[code]
    )
    pb_events, pb_links = pb.events, pb.links
    return ReadableSpan(
        name=pb.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes(pb.attributes),
        events=tuple(Event(e.name, attributes(e.attributes), e.time_unix_nano) for e in pb_events)
        if pb_events
        else (),
        links=tuple(
            Link(
                SpanContext(
                    int.from_bytes(link.trace_id, "big"),
                    int.from_bytes(link.span_id, "big"),
                    _is_remote(link.flags),
                    _FLAGS[link.flags & 0xFF],
                    _trace_state(link.trace_state),
                ),
                attributes(link.attributes),
            )
            for link in pb_links
        )
        if pb_links
        else (),
        kind=_KINDS.get(pb.kind, SpanKind.INTERNAL),
        status=status,
        start_time=pb.start_time_unix_nano,
        end_time=pb.end_time_unix_nano,
        instrumentation_scope=scope,
    )


def readable_spans(request: ExportTraceServiceRequest) -> list[ReadableSpan]:
    """Every span of ``request`` as an SDK ``ReadableSpan``, in request order."""
    spans: list[ReadableSpan] = []
    for rs in request.resource_spans:
        resource = _resource(rs.resource, rs.schema_url)
        for ss in rs.scope_spans:
            scope = _scope(ss.scope, ss.schema_url)
            spans.extend(_span(pb, resource, scope) for pb in ss.spans)
    return spans


def pb_spans(request: ExportTraceServiceRequest) -> list[PBSpan]:
    """Every protobuf span of ``request``, in the order ``readable_spans`` returns them."""
    return [pb for rs in request.resource_spans for ss in rs.scope_spans for pb in ss.spans]


def span_dict(span: ReadableSpan) -> dict[str, Any]:
    """A plain view of one span: hex ids, enum names, python attribute values.

    Works on any SDK span, so spans received over the wire compare directly with spans
    captured in process.
    """
    ctx = span.context
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "trace_state": ctx.trace_state.to_header() if ctx.trace_state else "",
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "attributes": dict(e.attributes or {}), "time_unix_nano": e.timestamp}
            for e in span.events
        ],
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
        "status": span.status.status_code.name,
        "status_message": span.status.description or "",
        "resource": dict(span.resource.attributes),
        "scope": scope.name if scope else None,
        "scope_version": scope.version if scope else None,
    }


def span_dicts(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    return [span_dict(s) for s in readable_spans(request)]


def friction_kinds(s: dict[str, Any]) -> list[str]:
    """The friction kinds found on a span of ``span_dicts``, one per finding, in order."""
    return [
        str(ev["attributes"].get(sc.GEN_AI_EVALUATION_SCORE_LABEL))
        for ev in s["events"]
        if ev["name"] == sc.GEN_AI_EVALUATION_RESULT
        and ev["attributes"].get(sc.GEN_AI_EVALUATION_NAME) == sc.EVALUATION_FRICTION
    ]


# --- metrics ----------------------------------------------------------------------------
def _optional(msg: Any, field: str) -> float | None:
    return getattr(msg, field) if msg.HasField(field) else None


def _point_values(kind: str, data: Any, point: Any) -> dict[str, Any]:
    if kind in ("sum", "gauge"):
        number = point.WhichOneof("value")  # as_int or as_double
        values: dict[str, Any] = {"value": getattr(point, number) if number else None}
        if kind == "sum":
            values["is_monotonic"] = data.is_monotonic
            values["temporality"] = _TEMPORALITY.get(data.aggregation_temporality, "unspecified")
        return values
    if kind == "summary":
        return {
            "count": point.count,
            "sum": point.sum,
            "quantiles": tuple((q.quantile, q.value) for q in point.quantile_values),
        }
    values = {
        "count": point.count,
        "sum": _optional(point, "sum"),
        "min": _optional(point, "min"),
        "max": _optional(point, "max"),
        "temporality": _TEMPORALITY.get(data.aggregation_temporality, "unspecified"),
    }
    if kind == "histogram":
        values["bucket_counts"] = tuple(point.bucket_counts)
        values["explicit_bounds"] = tuple(point.explicit_bounds)
    else:
        values.update(
            scale=point.scale,
            zero_count=point.zero_count,
            positive_offset=point.positive.offset,
            positive_bucket_counts=tuple(point.positive.bucket_counts),
            negative_offset=point.negative.offset,
            negative_bucket_counts=tuple(point.negative.bucket_counts),
        )
    return values


def metric_points(request: ExportMetricsServiceRequest) -> list[dict[str, Any]]:
    """One dict per data point, in request order.

    Every point has ``name, type, unit, description, attributes, resource, scope,
    start_time_unix_nano, time_unix_nano``; then by ``type``:
    ``sum``: value, is_monotonic, temporality; ``gauge``: value;
    ``histogram``: count, sum, min, max, bucket_counts, explicit_bounds, temporality;
    ``exp_histogram``: count, sum, min, max, scale, zero_count, positive_offset,
    positive_bucket_counts, negative_offset, negative_bucket_counts, temporality;
    ``summary``: count, sum, quantiles ((quantile, value), ...).
    """
    points: list[dict[str, Any]] = []
    for rm in request.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                for point in data.data_points:
                    points.append(
                        {
                            "name": metric.name,
                            "type": _METRIC_TYPES[kind],
                            "unit": metric.unit,
                            "description": metric.description,
                            "attributes": attributes(point.attributes),
                            "resource": dict(resource),
                            "scope": sm.scope.name,
                            "start_time_unix_nano": point.start_time_unix_nano,
                            "time_unix_nano": point.time_unix_nano,
                            **_point_values(kind, data, point),
                        }
                    )
    return points


# --- logs -------------------------------------------------------------------------------
def log_records(request: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    """One dict per log record: times, severity_number (int), severity_text, event_name,
    body and attributes (python values), trace_id / span_id (hex or None), resource, scope."""
    records: list[dict[str, Any]] = []
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                records.append(
                    {
                        "time_unix_nano": rec.time_unix_nano,
                        "observed_time_unix_nano": rec.observed_time_unix_nano,
                        "severity_number": rec.severity_number,
                        "severity_text": rec.severity_text,
                        "event_name": rec.event_name,
                        "body": any_value(rec.body),
                        "attributes": attributes(rec.attributes),
                        "trace_id": _hex(rec.trace_id),
                        "span_id": _hex(rec.span_id),
                        "resource": dict(resource),
                        "scope": sl.scope.name,
                    }
                )
    return records
