"""``frictionlens collector``: raw OTLP in (as a non-Python app sends it), enriched spans out
at a real downstream OTLPReceiver; bad input, auth, TLS, back-pressure, shutdown, scale-out."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from frictionlens import semconv
from frictionlens.collector.gateway import Gateway, collector_options
from frictionlens.collector.receiver import OTLPReceiver
from tests.otlp import CapturedOTLP

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = "application/x-protobuf"
_ids = iter(range(1, 1 << 30))


# -- raw OTLP, built by hand -------------------------------------------------------------
def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    return AnyValue(string_value=str(v))


def _call(conversation: str, *, abandoned: bool = False, **extra: Any) -> dict[str, Any]:
    """Attributes of an LLM call span, as a sender with our attribute names sets them."""
    attrs = {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_CONVERSATION_ID: conversation,
        semconv.OUTPUT_CHARS: 120,
        semconv.STREAM_ABANDONED: abandoned,
    }
    attrs.update(extra)
    return attrs


def _request(*spans: dict[str, Any], service: str = "go-app") -> ExportTraceServiceRequest:
    now = time.time_ns()
    pb_spans = []
    for attrs in spans:
        n = next(_ids)
        pb_spans.append(
            Span(
                trace_id=n.to_bytes(16, "big"),
                span_id=n.to_bytes(8, "big"),
                name="chat gpt-4o-mini",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=now - 1_000_000,
                end_time_unix_nano=now,
                attributes=[KeyValue(key=k, value=_value(v)) for k, v in attrs.items()],
            )
        )
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=pb_spans)])
    resource.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    return ExportTraceServiceRequest(resource_spans=[resource])


def _json_request(*spans: dict[str, Any]) -> bytes:
    """OTLP/JSON written the way the spec shows it: hex ids, camelCase, string int64s."""
    now = time.time_ns()

    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": str(v)}

    out = []
    for attrs in spans:
        n = next(_ids)
        out.append(
            {
                "traceId": f"{n:032x}",
                "spanId": f"{n:016x}",
                "name": "chat gpt-4o-mini",
                "kind": 3,
                "startTimeUnixNano": str(now - 1_000_000),
                "endTimeUnixNano": str(now),
                "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()],
            }
        )
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "node-app"}}]
                },
                "scopeSpans": [{"scope": {"name": "hand-made"}, "spans": out}],
            }
        ]
    }
    return json.dumps(doc).encode()


def _post(
    url: str,
    body: bytes,
    content_type: str = PROTOBUF,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        url + "/v1/traces",
        data=body,
        method="POST",
        headers={"Content-Type": content_type, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _grpc_export(channel: grpc.Channel, body: bytes, metadata: tuple = ()) -> Any:
    """Raw bytes over gRPC; returns the call (for trailing metadata)."""
    _, call = channel.unary_unary(EXPORT).with_call(body, timeout=10, metadata=metadata)
    return call


def _calls(spans: list[dict[str, Any]], conversation: str) -> list[dict[str, Any]]:
    return [
        s
        for s in spans
        if s["attributes"].get(semconv.GEN_AI_CONVERSATION_ID) == conversation
        and s["name"] != semconv.CONVERSATION_SPAN
    ]


def _summaries(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        s["attributes"][semconv.CONVERSATION_ID]: s["attributes"]
        for s in spans
        if s["name"] == semconv.CONVERSATION_SPAN
    }


# -- the collector as a real subprocess --------------------------------------------------
class _Process:
    """``frictionlens collector`` forwarding over OTLP/gRPC to ``sink``."""

    def __init__(self, sink: CapturedOTLP, cwd: Path, *args: str) -> None:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "frictionlens.cli",
                "collector",
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--forward",
                f"http://{sink.grpc_endpoint}",
                *args,
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ready(self) -> _Process:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        assert line.startswith("frictionlens collector:"), (
            line,
            self.proc.stderr.read() if self.proc.stderr else "",
        )
        fields = dict(part.split("=", 1) for part in line.split()[2:])
        self.grpc, self.http = fields["grpc"], fields["http"]
        return self

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out + err


def test_raw_otlp_from_outside_python_comes_out_enriched(tmp_path):
    """gRPC protobuf, HTTP protobuf and HTTP JSON in; enriched spans, conversation
    summaries (flushed at SIGTERM) and our metrics out at the downstream receiver."""
    enriched_in_app = _call("conv-app", **{semconv.REVIEW_NEEDED: False, "app.mark": "x"})
    with CapturedOTLP() as sink:
        collector = _Process(sink, tmp_path).ready()
        try:
            with grpc.insecure_channel(collector.grpc) as channel:
                _grpc_export(
                    channel,
                    _request(
                        _call("conv-grpc"), _call("conv-grpc", abandoned=True)
                    ).SerializeToString(),
                )
            status, _, _ = _post(
                collector.http, _request(_call("conv-http"), _call("conv-http")).SerializeToString()
            )
            assert status == 200
            status, _, body = _post(
                collector.http,
                _json_request(_call("conv-json", abandoned=True)),
                "application/json",
            )
            assert (status, json.loads(body)) == (200, {})
            status, _, _ = _post(collector.http, _request(enriched_in_app).SerializeToString())
            assert status == 200
        finally:
            rc, output = collector.stop()
        assert rc == 0, output
        spans = sink.wait_for_spans(lambda s: s["name"] == semconv.CONVERSATION_SPAN)
        spans = sink.spans()
        metrics = sink.wait_for_metric(semconv.METRIC_COLLECTOR_SPANS)

    grpc_calls = _calls(spans, "conv-grpc")
    assert [s["attributes"][semconv.CONVERSATION_ID] for s in grpc_calls] == ["conv-grpc"] * 2
    assert [s["attributes"].get(semconv.FRICTION_KIND) for s in grpc_calls] == [
        None,
        semconv.FRICTION_STREAM_ABANDON,
    ]
    assert [s["attributes"][semconv.REVIEW_NEEDED] for s in grpc_calls] == [False, True]
    assert all(s["attributes"][semconv.REVIEW_NEEDED] is False for s in _calls(spans, "conv-http"))
    (json_call,) = _calls(spans, "conv-json")
    assert json_call["attributes"][semconv.FRICTION_CATEGORY] == semconv.CATEGORY_DISENGAGEMENT
    assert json_call["resource"]["service.name"] == "node-app"

    (passed,) = _calls(spans, "conv-app")  # already enriched in the app: untouched
    assert passed["attributes"] == enriched_in_app

    summaries = _summaries(spans)
    assert set(summaries) == {"conv-grpc", "conv-http", "conv-json"}
    assert (
        summaries["conv-grpc"][semconv.CONVERSATION_END_REASON] == semconv.CONVERSATION_END_SHUTDOWN
    )
    assert summaries["conv-grpc"][semconv.REVIEW_NEEDED] is True
    assert summaries["conv-http"][semconv.CONVERSATION_CALLS] == 2

    last = {p["attributes"][semconv.METRIC_ATTR_OUTCOME]: p["value"] for p in metrics}
    assert last == {semconv.COLLECTOR_PROCESSED: 5, semconv.COLLECTOR_PASSED_THROUGH: 1}


# -- in-process gateways for the protocol details ------------------------------------------
@pytest.fixture
def sink() -> Iterator[CapturedOTLP]:
    with CapturedOTLP() as captured:
        yield captured


def _gateway(forward: str, **kwargs: Any) -> Gateway:
    return Gateway(
        grpc_endpoint="127.0.0.1:0",
        http_endpoint="127.0.0.1:0",
        forward=forward,
        options=collector_options(),
        **kwargs,
    )


def test_malformed_input_is_refused_clearly_and_the_server_stays_up(sink):
    with _gateway(sink.http_url) as gw:
        url = gw.receiver.http_url
        status, _, body = _post(url, b"\x0a\xff\xff\xff\xff\xff")
        assert status == 400 and b"malformed ExportTraceServiceRequest" in body
        status, _, body = _post(url, b'{"resourceSpans": [{"scopeSpans": 7}]}', "application/json")
        assert (
            status == 400
            and b"malformed ExportTraceServiceRequest" in json.loads(body)["message"].encode()
        )
        with grpc.insecure_channel(gw.receiver.grpc_endpoint) as channel:
            with pytest.raises(grpc.RpcError) as err:
                _grpc_export(channel, b"\x0a\xff\xff\xff")
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "malformed ExportTraceServiceRequest" in err.value.details()
            req = urllib.request.Request(
                url + "/v1/metrics", data=b"", method="POST", headers={"Content-Type": PROTOBUF}
            )
            with pytest.raises(urllib.error.HTTPError) as http_err:
                urllib.request.urlopen(req, timeout=10)
            assert http_err.value.code == 404 and b"/v1/traces" in http_err.value.read()
            _grpc_export(
                channel, _request(_call("after-bad-input", abandoned=True)).SerializeToString()
            )
        sink.wait_for_spans(
            lambda s: s["attributes"].get(semconv.FRICTION_KIND) == semconv.FRICTION_STREAM_ABANDON
        )


def test_bearer_token(sink):
    body = _request(_call("authed")).SerializeToString()
    with _gateway(sink.http_url, bearer_token="s3cret") as gw:
        url = gw.receiver.http_url
        status, headers, _ = _post(url, body)
        assert (status, headers.get("WWW-Authenticate")) == (401, "Bearer")
        assert _post(url, body, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert _post(url, body, headers={"Authorization": "Bearer s3cret"})[0] == 200
        with grpc.insecure_channel(gw.receiver.grpc_endpoint) as channel:
            with pytest.raises(grpc.RpcError) as err:
                _grpc_export(channel, body)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            _grpc_export(channel, body, metadata=(("authorization", "Bearer s3cret"),))
        sink.wait_for_spans(2)
    assert len(_calls(sink.spans(), "authed")) == 2


@pytest.fixture
def certificate(tmp_path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_tls(sink, certificate):
    cert, _ = certificate
    body = _request(_call("secure")).SerializeToString()
    with _gateway(sink.http_url, tls=certificate) as gw:
        url = gw.receiver.http_url
        assert url.startswith("https://")
        assert _post(url, body, context=ssl.create_default_context(cafile=cert))[0] == 200
        with pytest.raises(
            urllib.error.URLError
        ):  # an unknown certificate is refused by the client
            _post(url, body, context=ssl.create_default_context())
        credentials = grpc.ssl_channel_credentials(root_certificates=Path(cert).read_bytes())
        with grpc.secure_channel(gw.receiver.grpc_endpoint, credentials) as channel:
            _grpc_export(channel, body)
        sink.wait_for_spans(2)
    assert {
        s["attributes"][semconv.CONVERSATION_ID]
        for s in sink.spans()
        if s["name"] != semconv.CONVERSATION_SPAN
    } == {"secure"}


def test_back_pressure_with_a_blocked_downstream_then_the_sdk_exporter_retries():
    """A downstream that does not answer: the queue fills, senders get 429 + Retry-After and
    RESOURCE_EXHAUSTED + RetryInfo, nothing grows; once it answers, every accepted span arrives."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    release = threading.Event()
    arrived: list[ExportTraceServiceRequest] = []

    def blocked_sink(signal_name, message):
        release.wait(20)
        if signal_name == "traces":
            arrived.append(message)

    five = _request(*[_call("busy")] * 5).SerializeToString()
    with OTLPReceiver(blocked_sink, grpc_endpoint=None) as downstream:
        gw = _gateway(downstream.http_url, queue_spans=10)
        with gw:
            url = gw.receiver.http_url
            assert _post(url, five)[0] == 200  # taken by the worker, whose export now blocks
            deadline = time.monotonic() + 5
            while gw._queue.spans and time.monotonic() < deadline:  # pylint: disable=protected-access
                time.sleep(0.01)
            assert [_post(url, five)[0] for _ in range(2)] == [200, 200]  # the queue holds 10
            status, headers, body = _post(url, five)
            assert (status, headers.get("Retry-After")) == (429, "1") and b"queue full" in body
            with grpc.insecure_channel(gw.receiver.grpc_endpoint) as channel:
                with pytest.raises(grpc.RpcError) as err:
                    _grpc_export(channel, five)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "google.rpc.retryinfo-bin" in dict(err.value.trailing_metadata())
            assert gw._queue.spans == 10  # bounded  # pylint: disable=protected-access

            # an instrumented Python app's standard exporter, refused now, retries and gets in
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
            with provider.get_tracer("app").start_as_current_span(
                "chat gpt-4o-mini", attributes=_call("sdk-app", abandoned=True)
            ):
                pass
            app_spans = provider._active_span_processor._span_processors[
                0
            ].span_exporter.get_finished_spans()  # pylint: disable=protected-access
            exporter = OTLPSpanExporter(
                endpoint=gw.receiver.grpc_endpoint, insecure=True, timeout=20
            )
            result: list[SpanExportResult] = []
            app = threading.Thread(target=lambda: result.append(exporter.export(app_spans)))
            app.start()
            time.sleep(1.5)
            assert not result  # still retrying
            release.set()
            app.join(20)
            assert result == [SpanExportResult.SUCCESS]
        totals = gw.totals
    received = [
        s for req in arrived for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    assert len([s for s in received if s.name == "chat gpt-4o-mini"]) == 16
    assert totals[semconv.COLLECTOR_REFUSED] >= 10 + 1  # 5 HTTP + 5 gRPC + the app's first tries
    assert totals[semconv.COLLECTOR_PROCESSED] == 16
    app_span = next(
        s
        for s in received
        if any(
            kv.key == semconv.GEN_AI_CONVERSATION_ID and kv.value.string_value == "sdk-app"
            for kv in s.attributes
        )
    )
    assert {kv.key: kv.value.string_value for kv in app_span.attributes}[
        semconv.FRICTION_KIND
    ] == semconv.FRICTION_STREAM_ABANDON


def test_grpc_forward_merges_the_findings_into_the_spans_as_received(sink, monkeypatch):
    """Spans go on as the protobuf that came in, the sender's attributes as sent, plus what
    the stages found (attributes and evaluation events); a value a stage recomputes replaces
    the sender's, once."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    gw = Gateway(
        grpc_endpoint="127.0.0.1:0",
        http_endpoint=None,
        forward=f"http://{sink.grpc_endpoint}",
        options=collector_options(),
    )
    stale = _call("conv-m", abandoned=True, **{semconv.CONVERSATION_ID: "stale", "app.extra": 7})
    with gw, grpc.insecure_channel(gw.receiver.grpc_endpoint) as channel:
        _grpc_export(channel, _request(_call("conv-m"), stale).SerializeToString())
        sink.wait_for_spans(2)
    received = [
        s
        for req in sink.requests("traces")
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
        if s.name == "chat gpt-4o-mini"
    ]
    first, second = sorted(received, key=lambda s: s.span_id)
    keys = [kv.key for kv in second.attributes]
    assert keys[: len(stale) - 1] == [
        k for k in stale if k != semconv.CONVERSATION_ID
    ]  # as sent, in order
    assert keys.count(semconv.CONVERSATION_ID) == 1
    attrs = {kv.key: kv.value for kv in second.attributes}
    assert (
        attrs[semconv.CONVERSATION_ID].string_value == "conv-m"
        and attrs["app.extra"].int_value == 7
    )
    assert attrs[semconv.FRICTION_KIND].string_value == semconv.FRICTION_STREAM_ABANDON
    assert attrs[semconv.REVIEW_NEEDED].bool_value is True
    (event,) = second.events
    labels = {kv.key: kv.value.string_value for kv in event.attributes}
    assert (event.name, labels[semconv.GEN_AI_EVALUATION_SCORE_LABEL]) == (
        semconv.GEN_AI_EVALUATION_RESULT,
        semconv.FRICTION_STREAM_ABANDON,
    )
    assert {kv.key: kv.value.bool_value for kv in first.attributes}[semconv.REVIEW_NEEDED] is False
    assert not first.events


def test_signal_sampling_in_the_collector_forwards_flagged_conversations_only(sink, monkeypatch):
    """With sampling on, spans held back and released later go out beside the ones forwarded
    as received (gRPC forward); held spans of unflagged conversations do not."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    gw = Gateway(
        grpc_endpoint="127.0.0.1:0",
        http_endpoint=None,
        forward=f"http://{sink.grpc_endpoint}",
        options=collector_options(sample_rate=0.0),
    )
    with gw, grpc.insecure_channel(gw.receiver.grpc_endpoint) as channel:
        _grpc_export(
            channel, _request(_call("later-flagged"), _call("never-flagged")).SerializeToString()
        )
        deadline = time.monotonic() + 10
        while gw.totals.get(semconv.COLLECTOR_PROCESSED, 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        _grpc_export(channel, _request(_call("later-flagged", abandoned=True)).SerializeToString())
        sink.wait_for_spans(2)
    spans = sink.spans()
    flagged = _calls(spans, "later-flagged")
    assert sorted(s["attributes"][semconv.REVIEW_NEEDED] for s in flagged) == [False, True]
    assert all(s["attributes"][semconv.CONVERSATION_ID] == "later-flagged" for s in flagged)
    assert _calls(spans, "never-flagged") == []


def test_learned_state_is_kept_in_the_data_dir(sink, tmp_path):
    data = tmp_path / "collector-state"
    gateway = Gateway(
        grpc_endpoint=None,
        http_endpoint="127.0.0.1:0",
        forward=sink.http_url,
        options=collector_options(data_dir=data),
        persist=True,
    )
    with gateway as gw:
        assert (
            _post(gw.receiver.http_url, _request(*[_call("kept")] * 3).SerializeToString())[0]
            == 200
        )
        sink.wait_for_spans(3)
    sections = json.loads((data / "state.json").read_text())["sections"]
    assert {"drift", "trajectory"} <= set(sections)
    assert "openai/gpt-4o-mini/default" in json.dumps(sections["drift"])


# -- scale-out: conversations routed by hash give the signals of one collector -------------
def _traffic() -> list[tuple[str, ExportTraceServiceRequest]]:
    """30 conversations, 4 calls each, interleaved; some abandon streams, some give feedback."""
    import random

    rnd = random.Random(9)
    out = []
    for _turn in range(4):
        for c in range(30):
            conv = f"conv-{c}"
            out.append((conv, _request(_call(conv, abandoned=rnd.random() < 0.2))))
            if rnd.random() < 0.15:
                feedback = {
                    semconv.FEEDBACK_KIND: semconv.FEEDBACK_THUMBS_DOWN,
                    semconv.FEEDBACK_CONVERSATION_ID: conv,
                }
                req = _request(feedback)
                req.resource_spans[0].scope_spans[0].spans[0].name = semconv.FEEDBACK_SPAN
                out.append((conv, req))
    return out


def _signals(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Per conversation: every span's friction kind and review flag in order, and its summary."""
    per: dict[str, Any] = {}
    for s in sorted(spans, key=lambda s: s["start_time_unix_nano"]):
        a = s["attributes"]
        if s["name"] == semconv.CONVERSATION_SPAN:
            continue
        per.setdefault(a[semconv.CONVERSATION_ID], []).append(
            (s["name"], a.get(semconv.FRICTION_KIND), a[semconv.REVIEW_NEEDED])
        )
    keep = (
        semconv.CONVERSATION_CALLS,
        semconv.CONVERSATION_OUTCOME,
        semconv.REVIEW_NEEDED,
        semconv.REVIEW_REASON,
        semconv.FRICTION_SCORE,
    )
    summaries = {
        conv: {k: a.get(k) for k in keep}
        | {k: v for k, v in a.items() if k.startswith(semconv.CONVERSATION_FRICTION_PREFIX)}
        for conv, a in _summaries(spans).items()
    }
    return {"spans": per, "summaries": summaries}


def test_three_replicas_behind_conversation_hash_routing_match_one_collector(tmp_path):
    traffic = _traffic()
    with CapturedOTLP() as one_sink, CapturedOTLP() as many_sink:
        single = _Process(one_sink, tmp_path)
        replicas = [_Process(many_sink, tmp_path) for _ in range(3)]
        procs = [single.ready()] + [r.ready() for r in replicas]
        channels = [grpc.insecure_channel(p.grpc) for p in procs]
        try:
            for conv, req in traffic:
                body = req.SerializeToString()
                _grpc_export(channels[0], body)
                _grpc_export(channels[1 + zlib.crc32(conv.encode()) % 3], body)
        finally:
            for ch in channels:
                ch.close()
            results = [p.stop() for p in procs]
        assert [rc for rc, _ in results] == [0] * 4, results
        expected = len(traffic) + 30  # every span plus one summary per conversation
        one, many = one_sink.wait_for_spans(expected), many_sink.wait_for_spans(expected)
    reference = _signals(one)
    assert len(reference["summaries"]) == 30
    assert any(s[semconv.REVIEW_NEEDED] for s in reference["summaries"].values())
    assert not all(s[semconv.REVIEW_NEEDED] for s in reference["summaries"].values())
    assert _signals(many) == reference


# -- rotel with our processor ------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _python_home(linked: str) -> str:
    """The prefix of the libpython the agent links (``ldd`` output): its own standard library.

    Without it the embedded interpreter may look up ``python3`` on PATH and load another
    installation's standard library, whose extension modules do not match that libpython.
    """
    match = re.search(r"=> (\S*libpython\S+)", linked)
    assert match, linked
    return match.group(1).split("/lib/")[0] or "/"


def test_rotel_with_the_frictionlens_processor(sink):
    """app (raw OTLP) -> rotel agent running collector/rotel_processor.py -> receiver."""
    rotel = pytest.importorskip("rotel", reason="the rotel extra is not installed")
    import site
    import sysconfig

    agent = Path(rotel.__file__).parent / "rotel-agent"
    linked = subprocess.run(["ldd", str(agent)], capture_output=True, text=True).stdout
    if "not found" in linked:
        pytest.skip(f"the rotel agent needs a system libpython it cannot find: {linked.strip()}")
    import frictionlens.collector.rotel_processor as processor_module

    grpc_port = _free_port()
    sites = os.pathsep.join([sysconfig.get_paths()["purelib"], *site.getsitepackages()])
    proc = subprocess.Popen(
        [
            str(agent),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{_free_port()}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            f"http://{sink.grpc_endpoint}",
            "--otlp-with-trace-processor",
            processor_module.__file__,
        ],
        env={**os.environ, "FRICTIONLENS_ROTEL_SITE": sites, "PYTHONHOME": _python_home(linked)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            while True:  # the agent accepts before its Python processor is loaded
                try:
                    _grpc_export(
                        channel,
                        _request(
                            _call("via-rotel"), _call("via-rotel", abandoned=True)
                        ).SerializeToString(),
                    )
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        spans = sink.wait_for_spans(2, timeout=20)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    calls = _calls(spans, "via-rotel")
    assert [s["attributes"].get(semconv.FRICTION_KIND) for s in calls] == [
        None,
        semconv.FRICTION_STREAM_ABANDON,
    ], output
    assert [s["attributes"][semconv.REVIEW_NEEDED] for s in calls] == [False, True]
