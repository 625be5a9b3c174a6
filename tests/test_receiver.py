"""The OTLP receiver and decoding, fed by the real OTLP exporters and by raw wire bodies."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import urllib.error
import urllib.request

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from frictionlens.collector.decode import (
    attributes,
    key_values,
    readable_spans,
    span_dict,
    span_fields,
)
from frictionlens.collector.receiver import OTLPReceiver
from frictionlens.processors.pipeline import SignalPipeline, SpanRecord
from tests.otlp import CapturedOTLP, otlp_receiver  # noqa: F401 - the fixture

RESOURCE = Resource.create({"service.name": "checkout", "deployment.environment": "test"})
ATTRS = {
    "str": "héllo",
    "int": -(2**62),
    "float": 0.25,
    "bool": True,
    "strs": ("a", "b"),
    "ints": (1, 2, 3),
    "floats": (1.5, -2.0),
    "bools": (True, False),
}
LINKED = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(1),
)


def _span_exporter(protocol: str, captured: CapturedOTLP, gzip_on: bool = False):
    if protocol == "grpc":
        return GrpcSpanExporter(
            endpoint=captured.grpc_endpoint,
            insecure=True,
            compression=grpc.Compression.Gzip if gzip_on else None,
        )
    return HttpSpanExporter(
        endpoint=captured.http_url + "/v1/traces",
        compression=HttpCompression.Gzip if gzip_on else HttpCompression.NoCompression,
    )


def _make_spans(*exporters) -> list:
    """A parent with every attribute type, an event, a link and an error status; a child."""
    provider = TracerProvider(resource=RESOURCE)
    local = InMemorySpanExporter()
    for exporter in (local, *exporters):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.receiver", "1.2.3")
    links = [Link(LINKED, {"why": "retry of"})]
    with tracer.start_as_current_span(
        "chat gpt-4o", kind=SpanKind.CLIENT, attributes=ATTRS, links=links
    ) as parent:
        parent.add_event("gen_ai.choice", {"index": 0, "finish": ("stop",)})
        with tracer.start_as_current_span("tool"):
            pass
        parent.set_status(Status(StatusCode.ERROR, "upstream 500"))
    provider.shutdown()
    return local.get_finished_spans()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("gzip_on", [False, True], ids=["plain", "gzip"])
def test_spans_round_trip_exactly(otlp_receiver, protocol, gzip_on):
    sent = _make_spans(_span_exporter(protocol, otlp_receiver, gzip_on))

    got = otlp_receiver.spans()
    assert got == [span_dict(s) for s in sent]
    child, parent = got
    assert parent["attributes"] == ATTRS
    assert (
        parent["kind"] == "CLIENT"
        and parent["status"] == "ERROR"
        and parent["status_message"] == "upstream 500"
    )
    assert parent["events"][0]["name"] == "gen_ai.choice"
    assert parent["events"][0]["attributes"] == {"index": 0, "finish": ("stop",)}
    assert parent["links"] == [
        {
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": "b7ad6b7169203331",
            "attributes": {"why": "retry of"},
        }
    ]
    assert child["parent_span_id"] == parent["span_id"] and parent["parent_span_id"] is None
    assert child["trace_id"] == parent["trace_id"] and len(parent["trace_id"]) == 32
    assert parent["resource"]["service.name"] == "checkout"
    assert (parent["scope"], parent["scope_version"]) == ("tests.receiver", "1.2.3")


def test_decoded_spans_encode_back_to_the_request_the_exporter_sent(otlp_receiver):
    _make_spans(_span_exporter("grpc", otlp_receiver))
    requests = otlp_receiver.requests("traces")
    assert len(requests) == 2  # SimpleSpanProcessor: one span per request
    for request in requests:
        assert encode_spans(readable_spans(request)) == request


def test_span_fields_merge_into_a_received_span_as_attributes_and_events():
    """How the collector adds the stages' results to a span it forwards as received."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PBSpan
    from opentelemetry.sdk.trace import Event

    pb = PBSpan(name="call", attributes=key_values({"sender.key": "x"}))
    added = {
        "s": "text",
        "b": True,
        "i": 1,
        "f": 1.0,
        "neg": -5,
        "big": 2**62,
        "raw": b"\x00\x01",
        "tuple": ("a", "b"),
        "list": [1, 2],
        "kv": {"k": "v"},
    }
    pb.MergeFromString(span_fields(added, [Event("ev", {"score": 0.5, "label": "x"}, 123)]))
    assert attributes(pb.attributes) == {"sender.key": "x", **added, "list": (1, 2)}
    assert [(e.name, e.time_unix_nano, attributes(e.attributes)) for e in pb.events] == [
        ("ev", 123, {"score": 0.5, "label": "x"})
    ]
    # encodings are cached: values equal across types (True == 1 == 1.0) stay apart
    for value in (True, 1, 1.0, False, 0, 0.0):
        one = PBSpan()
        one.MergeFromString(span_fields({"k": value}))
        (got,) = attributes(one.attributes).values()
        assert (type(got), got) == (type(value), value)


def test_decoded_spans_run_through_the_signal_pipeline(otlp_receiver):
    seen: list[str] = []

    class Mark:
        def process(self, record: SpanRecord, emit) -> None:
            seen.append(record.span.name)
            record.set("frictionlens.test.seen", True)

        def tick(self, now_ns, emit) -> None:
            pass

        def close(self, emit) -> None:
            pass

    sent = _make_spans(_span_exporter("http/protobuf", otlp_receiver))
    out = InMemorySpanExporter()
    pipeline = SignalPipeline([Mark()], SimpleSpanProcessor(out))
    for span in otlp_receiver.readable_spans():
        pipeline.on_end(span)
    pipeline.shutdown()

    assert seen == ["tool", "chat gpt-4o"]
    exported = [span_dict(s) for s in out.get_finished_spans()]  # reached the export stage
    assert [s["attributes"].pop("frictionlens.test.seen") for s in exported] == [True, True]
    assert exported == [span_dict(s) for s in sent]


def test_otlp_json_with_hex_ids_and_every_any_value(otlp_receiver):
    # Written as the OTLP/JSON spec spells it: hex ids, int64 as strings, enums as ints
    # or names, camelCase keys.
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "go-app"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "otel-go", "version": "1.0"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "chat",
                                "kind": 3,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "big", "value": {"intValue": "9007199254740993"}},
                                    {"key": "pi", "value": {"doubleValue": 3.5}},
                                    {"key": "ok", "value": {"boolValue": False}},
                                    {
                                        "key": "raw",
                                        "value": {
                                            "bytesValue": base64.b64encode(b"\x00\x01").decode()
                                        },
                                    },
                                    {
                                        "key": "mixed",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "x"},
                                                    {"intValue": "1"},
                                                    {
                                                        "arrayValue": {
                                                            "values": [{"boolValue": True}]
                                                        }
                                                    },
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "map",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "a", "value": {"stringValue": "b"}},
                                                    {
                                                        "key": "nested",
                                                        "value": {
                                                            "kvlistValue": {
                                                                "values": [
                                                                    {
                                                                        "key": "n",
                                                                        "value": {"intValue": 2},
                                                                    }
                                                                ]
                                                            }
                                                        },
                                                    },
                                                ]
                                            }
                                        },
                                    },
                                    {"key": "empty", "value": {}},
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": "1544712660500000000",
                                        "name": "exception",
                                        "attributes": [
                                            {
                                                "key": "exception.type",
                                                "value": {"stringValue": "Timeout"},
                                            }
                                        ],
                                    }
                                ],
                                "links": [
                                    {
                                        "traceId": "0af7651916cd43dd8448eb211c80319c",
                                        "spanId": "b7ad6b7169203331",
                                    }
                                ],
                                "status": {"code": "STATUS_CODE_OK"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, ctype, body = _post(
        otlp_receiver.http_url + "/v1/traces", json.dumps(doc).encode(), "application/json"
    )
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {}

    (span,) = otlp_receiver.spans()
    assert span["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert (span["span_id"], span["parent_span_id"]) == ("eee19b7ec3c1b174", "eee19b7ec3c1b173")
    assert span["kind"] == "CLIENT" and span["status"] == "OK"
    assert span["start_time_unix_nano"] == 1544712660000000000
    assert span["attributes"] == {
        "big": 9007199254740993,
        "pi": 3.5,
        "ok": False,
        "raw": b"\x00\x01",
        "mixed": ("x", 1, (True,)),
        "map": {"a": "b", "nested": {"n": 2}},
        "empty": None,
    }
    assert span["events"] == [
        {
            "name": "exception",
            "attributes": {"exception.type": "Timeout"},
            "time_unix_nano": 1544712660500000000,
        }
    ]
    assert span["links"] == [
        {
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": "b7ad6b7169203331",
            "attributes": {},
        }
    ]
    assert span["resource"] == {"service.name": "go-app"} and span["scope"] == "otel-go"


def test_otlp_json_built_from_an_exporter_request_decodes_like_protobuf(otlp_receiver):
    sent = _make_spans()
    doc = json_format.MessageToDict(encode_spans(sent))
    for rs in doc["resourceSpans"]:  # protobuf's JSON writes bytes as base64; OTLP/JSON as hex
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", ()):
                    link["traceId"] = base64.b64decode(link["traceId"]).hex()
                    link["spanId"] = base64.b64decode(link["spanId"]).hex()
    body = gzip.compress(json.dumps(doc).encode())
    status, _, _ = _post(
        otlp_receiver.http_url + "/v1/traces",
        body,
        "application/json; charset=utf-8",
        encoding="gzip",
    )
    assert status == 200
    assert otlp_receiver.spans() == [span_dict(s) for s in sent]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_metrics_decode(otlp_receiver, protocol):
    if protocol == "grpc":
        exporter = GrpcMetricExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True)
    else:
        exporter = HttpMetricExporter(endpoint=otlp_receiver.http_url + "/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=RESOURCE,
        views=[
            View(
                instrument_name="latency.exp",
                aggregation=ExponentialBucketHistogramAggregation(max_size=20),
            )
        ],
    )
    meter = provider.get_meter("tests.metrics")
    counter = meter.create_counter("frictionlens.friction.events", unit="{event}")
    counter.add(2, {"kind": "retry"})
    counter.add(3, {"kind": "retry"})
    meter.create_up_down_counter("queue.depth").add(-4)
    hist = meter.create_histogram(
        "frictionlens.output.length",
        unit="{char}",
        explicit_bucket_boundaries_advisory=[10.0, 100.0],
    )
    for value in (5, 50, 50, 500):
        hist.record(value, {"stream": "s1"})
    meter.create_gauge("frictionlens.drift.score").set(0.75, {"feature": "length"})
    meter.create_histogram("latency.exp").record(3.0)
    provider.shutdown()

    points = {
        p["name"]: p for p in otlp_receiver.metrics()
    }  # shutdown exported once, synchronously
    assert len(points) == len(otlp_receiver.metrics()) == 5
    counter_pt = points["frictionlens.friction.events"]
    assert (counter_pt["type"], counter_pt["value"], counter_pt["is_monotonic"]) == ("sum", 5, True)
    assert counter_pt["attributes"] == {"kind": "retry"} and counter_pt["unit"] == "{event}"
    assert counter_pt["temporality"] == "cumulative" and counter_pt["scope"] == "tests.metrics"
    assert counter_pt["resource"]["service.name"] == "checkout"
    assert (points["queue.depth"]["value"], points["queue.depth"]["is_monotonic"]) == (-4, False)
    h = points["frictionlens.output.length"]
    assert h["type"] == "histogram"
    assert (h["count"], h["sum"], h["min"], h["max"]) == (4, 605, 5, 500)
    assert (h["explicit_bounds"], h["bucket_counts"]) == ((10.0, 100.0), (1, 2, 1))
    assert otlp_receiver.wait_for_metric("frictionlens.drift.score", timeout=1) == [
        points["frictionlens.drift.score"]
    ]
    with pytest.raises(
        AssertionError, match="frictionlens.drift.score"
    ):  # the message lists what came
        otlp_receiver.wait_for_metric("never.sent", timeout=0.05)
    g = points["frictionlens.drift.score"]
    assert (g["type"], g["value"], g["attributes"]) == ("gauge", 0.75, {"feature": "length"})
    e = points["latency.exp"]
    assert (e["type"], e["count"], e["sum"]) == ("exp_histogram", 1, 3.0)
    assert sum(e["positive_bucket_counts"]) == 1


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_logs_decode(otlp_receiver, protocol):
    if protocol == "grpc":
        exporter = GrpcLogExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True)
    else:
        exporter = HttpLogExporter(endpoint=otlp_receiver.http_url + "/v1/logs")
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("tests.logs").emit(
        body={"role": "user", "turns": (1, 2)},
        attributes={"n": 1},
        severity_text="WARN",
        event_name="gen_ai.feedback",
    )
    provider.shutdown()

    (record,) = otlp_receiver.logs()
    assert record["body"] == {"role": "user", "turns": (1, 2)}
    assert (record["attributes"], record["severity_text"], record["event_name"]) == (
        {"n": 1},
        "WARN",
        "gen_ai.feedback",
    )
    assert record["scope"] == "tests.logs" and record["resource"]["service.name"] == "checkout"


# --- bad input: refused clearly, server stays up ------------------------------------------
def _post(
    url: str, body: bytes, content_type: str, encoding: str | None = None
) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def _sends_ok(captured: CapturedOTLP) -> bool:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_span_exporter("http/protobuf", captured)))
    provider.add_span_processor(SimpleSpanProcessor(_span_exporter("grpc", captured)))
    provider.get_tracer("t").start_span("after").end()
    provider.shutdown()
    return [s["name"] for s in captured.spans()] == ["after", "after"]


def _status(body: bytes, content_type: str) -> status_pb2.Status:
    if content_type == "application/json":
        return json_format.Parse(body, status_pb2.Status())
    return status_pb2.Status.FromString(body)


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "expect_status", "expect_text"),
    [
        (
            b"\xff\xff\xff",
            "application/x-protobuf",
            None,
            400,
            "malformed ExportTraceServiceRequest",
        ),
        (b"{not json", "application/json", None, 400, "malformed ExportTraceServiceRequest"),
        (
            b'{"resourceSpans": 5}',
            "application/json",
            None,
            400,
            "malformed ExportTraceServiceRequest",
        ),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}',
            "application/json",
            None,
            400,
            "not hex",
        ),
        (b"\x1f\x8b\x08garbage", "application/x-protobuf", "gzip", 400, "malformed gzip"),
    ],
    ids=["protobuf", "json-syntax", "json-shape", "json-id", "gzip"],
)
def test_malformed_http_body_is_400_and_server_stays_up(
    otlp_receiver, capfd, body, content_type, encoding, expect_status, expect_text
):
    status, ctype, payload = _post(
        otlp_receiver.http_url + "/v1/traces", body, content_type, encoding
    )
    assert status == expect_status
    assert ctype == content_type
    error = _status(payload, content_type)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and expect_text in error.message
    assert _sends_ok(otlp_receiver)
    assert capfd.readouterr().err == ""  # quiet: no request log


def test_malformed_grpc_body_is_invalid_argument_and_server_stays_up(otlp_receiver):
    with grpc.insecure_channel(otlp_receiver.grpc_endpoint) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            export(b"\xff\xff\xff", timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "malformed ExportTraceServiceRequest" in info.value.details()
        assert (
            export(ExportTraceServiceRequest().SerializeToString(), timeout=5)
            == ExportTraceServiceResponse()
        )
    assert _sends_ok(otlp_receiver)


@pytest.mark.parametrize(
    ("path", "content_type", "encoding", "expect"),
    [
        ("/v1/traces", "text/plain", None, 415),
        ("/v1/traces", "application/x-protobuf", "br", 415),
        ("/v1/nope", "application/x-protobuf", None, 404),
    ],
)
def test_unsupported_requests_are_refused(otlp_receiver, path, content_type, encoding, expect):
    status, _, payload = _post(otlp_receiver.http_url + path, b"", content_type, encoding)
    assert status == expect and payload
    assert _sends_ok(otlp_receiver)


def test_oversized_body_is_413_before_and_after_gzip():
    received = []
    with OTLPReceiver(
        lambda *a: received.append(a), grpc_endpoint=None, max_request_bytes=1000
    ) as receiver:
        assert receiver.grpc_port is None and receiver.grpc_endpoint is None
        url = receiver.http_url + "/v1/traces"
        assert _post(url, b"\x00" * 1001, "application/x-protobuf")[0] == 413
        assert _post(url, gzip.compress(b"\x00" * 5000), "application/x-protobuf", "gzip")[0] == 413
        assert _post(url, b"", "application/x-protobuf")[0] == 200
    assert [signal for signal, _ in received] == ["traces"]


def test_a_busy_port_fails_start(otlp_receiver):
    with pytest.raises(OSError):
        OTLPReceiver(
            print, grpc_endpoint=None, http_endpoint=f"127.0.0.1:{otlp_receiver.receiver.http_port}"
        ).start()
    with pytest.raises(RuntimeError):
        OTLPReceiver(print, grpc_endpoint=otlp_receiver.grpc_endpoint, http_endpoint=None).start()
    assert _sends_ok(otlp_receiver)


def test_chunked_request_body(otlp_receiver):
    body = encode_spans(_make_spans()).SerializeToString()
    conn = http.client.HTTPConnection("127.0.0.1", otlp_receiver.receiver.http_port, timeout=5)
    headers = {"Content-Type": "application/x-protobuf"}
    conn.request(
        "POST",
        "/v1/traces",
        body=iter([body[:10], body[10:]]),
        headers=headers,
        encode_chunked=True,
    )
    assert conn.getresponse().status == 200
    conn.close()
    assert len(otlp_receiver.spans()) == 2


def test_failing_sink_is_500_and_internal():
    def sink(signal, message):
        raise RuntimeError("store is full")

    with OTLPReceiver(sink) as receiver:
        status, _, payload = _post(receiver.http_url + "/v1/traces", b"", "application/x-protobuf")
        assert status == 500 and "store is full" in status_pb2.Status.FromString(payload).message
        exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        assert exporter.export(_make_spans()) == SpanExportResult.FAILURE


def test_env_points_a_configured_exporter_here(otlp_receiver, monkeypatch):
    for protocol, exporter_cls in (("grpc", GrpcSpanExporter), ("http/protobuf", HttpSpanExporter)):
        for key, value in otlp_receiver.env(protocol).items():
            monkeypatch.setenv(key, value)
        assert exporter_cls().export(_make_spans()) == SpanExportResult.SUCCESS
    assert len(otlp_receiver.wait_for_spans(4)) == 4
    assert (
        otlp_receiver.wait_for_spans(lambda s: s["name"] == "tool", timeout=1)[0]["name"] == "tool"
    )
    with pytest.raises(AssertionError, match="received"):
        otlp_receiver.wait_for_spans(5, timeout=0.1)
