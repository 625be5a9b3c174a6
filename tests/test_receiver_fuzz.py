"""Hostile input to the OTLP receiver: it answers 200 or a 4xx (gRPC OK, INVALID_ARGUMENT or
RESOURCE_EXHAUSTED), never a 5xx, and keeps serving.

Generated bodies: random bytes, truncated and bit-flipped valid requests, deeply nested
attribute values (protobuf and JSON), oversized and gzip bodies, wrong content types and
encodings. ``FRICTIONLENS_FUZZ_EXAMPLES`` scales the examples, as in test_transparency.
"""

from __future__ import annotations

import gzip
import os
import urllib.error
import urllib.request

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from frictionlens.collector.receiver import OTLPReceiver

EXAMPLES = int(os.environ.get("FRICTIONLENS_FUZZ_EXAMPLES", "120"))
MAX_BYTES = 64 * 1024
PATHS = ["/v1/traces", "/v1/metrics", "/v1/logs"]
GRPC_METHODS = [
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
]
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    tag, size, out = (number << 3) | 2, len(payload), bytearray()
    for value in (tag, size):
        while value > 0x7F:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out) + payload


def nested_protobuf(depth: int) -> bytes:
    """A trace request whose one attribute nests kvlist values ``depth`` deep."""
    value = AnyValue(string_value="v").SerializeToString()
    for _ in range(
        depth
    ):  # AnyValue.kvlist_value(6) -> KeyValueList.values(1) -> KeyValue.key(1), value(2)
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
    attribute = _field(1, b"k") + _field(2, value)
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s").SerializeToString() + _field(
        9, attribute
    )
    return _field(1, _field(2, _field(2, span)))  # resource_spans -> scope_spans -> spans


def nested_json(depth: int) -> bytes:
    inner = '{"stringValue":"v"}'
    for _ in range(depth):
        inner = '{"kvlistValue":{"values":[{"key":"k","value":' + inner + "}]}}"
    span = (
        '{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"s",'
        '"attributes":[{"key":"k","value":' + inner + "}]}"
    )
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}").encode()


def valid_request(names: list[str]) -> bytes:
    spans = [
        Span(
            trace_id=b"\x01" * 16,
            span_id=bytes([i + 1]) * 8,
            name=n,
            attributes=[KeyValue(key="a", value=AnyValue(string_value=n))],
        )
        for i, n in enumerate(names)
    ]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    ).SerializeToString()


valid = st.lists(st.text(max_size=30), min_size=1, max_size=5).map(valid_request)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.tuples(valid, st.floats(0, 1)).map(lambda vf: vf[0][: int(len(vf[0]) * vf[1])]),  # truncated
    st.tuples(valid, st.integers(0, 10**6), st.integers(1, 255)).map(
        lambda v: bytes(b ^ v[2] if i == v[1] % len(v[0]) else b for i, b in enumerate(v[0]))
    ),  # one byte flipped
    st.integers(1, 3000).map(nested_protobuf),
    st.integers(1, 3000).map(nested_json),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
    ).map(lambda v: __import__("json").dumps({"resourceSpans": v}).encode()),
    st.integers(MAX_BYTES - 8, MAX_BYTES * 2).map(lambda n: b"\x0a" * n),  # oversized
)
content_types = st.sampled_from(
    [
        "application/x-protobuf",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/x-protobuf; proto=x",
        "multipart/form-data",
    ]
)


@pytest.fixture(scope="module")
def receiver():
    with OTLPReceiver(lambda *a: None, max_request_bytes=MAX_BYTES) as rcv:
        yield rcv


def post(url: str, body: bytes, content_type: str, encoding: str | None) -> int:
    headers = {"Content-Type": content_type} if content_type else {}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


def still_up(receiver: OTLPReceiver) -> bool:
    return (
        post(
            receiver.http_url + "/v1/traces", valid_request(["ok"]), "application/x-protobuf", None
        )
        == 200
    )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=bodies,
    path=st.sampled_from(PATHS),
    content_type=content_types,
    encoding=st.sampled_from([None, "gzip", "gzip-raw", "br", "identity"]),
)
def test_http_answers_4xx_to_anything_bad_and_stays_up(
    receiver, body, path, content_type, encoding
):
    if encoding == "gzip":
        body = gzip.compress(body)
    status = post(
        receiver.http_url + path, body, content_type, "gzip" if encoding == "gzip-raw" else encoding
    )
    assert status == 200 or 400 <= status < 500, status
    if len(body) > MAX_BYTES:
        assert status == 413
    assert still_up(receiver)


@settings(
    max_examples=max(10, EXAMPLES // 2), deadline=None, suppress_health_check=list(HealthCheck)
)
@given(body=bodies, method=st.sampled_from(GRPC_METHODS))
def test_grpc_refuses_anything_bad_and_stays_up(receiver, body, method):
    with grpc.insecure_channel(receiver.grpc_endpoint) as channel:
        export = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            export(body, timeout=30)
        except grpc.RpcError as err:
            assert err.code() in REFUSALS, (err.code(), err.details())
        assert export(b"", timeout=30) == b""  # an empty request is valid: still serving
    assert still_up(receiver)
