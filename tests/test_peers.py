"""Bring your own instrumentation: spans made by other GenAI instrumentations get our signals.

Each peer instrumentation runs for real (the real openai SDK over real HTTP to the local
server, the peer's instrumentor on the app's TracerProvider), with
``frictionlens.instrument(providers=False)`` adding only the pipeline. Friction and drift
must appear on the peer's own exported spans.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frictionlens
from frictionlens import semconv as sc
from frictionlens.collector.decode import readable_spans
from frictionlens.config import Options
from frictionlens.exporters.filestore import read_traces
from frictionlens.localserver import (
    LocalLLMServer,
    ReceivedRequest,
    Reply,
    Usage,
    default_responder,
)
from frictionlens.processors.drift import DriftStage
from frictionlens.processors.drift.design import FULL_BASELINE as WARMUP
from frictionlens.processors.normalize import Normalizer
from frictionlens.processors.persistence import FILE_NAME as STATE_FILE
from frictionlens.processors.persistence import StateFile
from frictionlens.processors.pipeline import SignalPipeline
from frictionlens.runtime import build_stages

SYSTEM = "You are the support assistant of a bank. Answer briefly."
JSON_SYSTEM = "Extract the order from the customer's message as JSON."

#: peer -> (instrumentor module, scope name of its spans, environment for content capture)
PEERS = {
    "official": (
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.util.genai.handler",
        {
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        },
    ),
    "traceloop": (
        "opentelemetry.instrumentation.openai",
        "opentelemetry.instrumentation.openai.v1",
        {
            "TRACELOOP_TRACE_CONTENT": "true",
        },
    ),
    "openinference": (
        "openinference.instrumentation.openai",
        "openinference.instrumentation.openai",
        {},
    ),
}


@contextlib.contextmanager
def _instrumented(name: str) -> Iterator[_Run]:
    """The peer's instrumentor on an app TracerProvider, then ``instrument(providers=False)``:
    our pipeline goes in front of the app's exporter, and nothing of ours wraps the SDK."""
    module_name, scope, _ = PEERS[name]
    module = pytest.importorskip(
        module_name, reason=f"{module_name} is not installed (extra: peers)"
    )
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = module.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tp)
    frictionlens.instrument(
        tracer_provider=tp,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        providers=False,
        exporter="none",
        sample_rate=1.0,
    )
    raw = (
        InMemorySpanExporter()
    )  # added after the pipeline: beside it, sees the peer's spans as made
    tp.add_span_processor(SimpleSpanProcessor(raw))
    try:
        yield _Run(exporter, raw, scope, tp)
    finally:
        frictionlens.uninstrument()
        instrumentor.uninstrument()


def _capture_content(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for key, value in PEERS[name][2].items():
        monkeypatch.setenv(key, value)


@pytest.fixture(params=sorted(PEERS))
def peer(request, monkeypatch):
    """Each peer with its content capture on."""
    _capture_content(monkeypatch, request.param)
    with _instrumented(request.param) as run:
        yield run


class _Run:
    def __init__(
        self,
        exporter: InMemorySpanExporter,
        raw: InMemorySpanExporter,
        scope: str,
        tp: TracerProvider,
    ) -> None:
        self.exporter, self.raw, self.scope, self.tp = exporter, raw, scope, tp

    def spans(self, exporter: InMemorySpanExporter | None = None):
        """The peer's spans as exported (ours are not there: providers=False)."""
        self.tp.force_flush()  # the pipeline runs its stages on a worker thread
        spans = (exporter or self.exporter).get_finished_spans()
        assert all(
            s.instrumentation_scope.name != sc.SCOPE_NAME
            for s in spans
            if s.name != sc.CONVERSATION_SPAN
        )
        return [s for s in spans if s.instrumentation_scope.name == self.scope]


def _chat(client: openai.OpenAI, history: list[dict[str, str]], answers: list[str]) -> None:
    answer = (
        client.chat.completions.create(model="gpt-test", messages=history)
        .choices[0]
        .message.content
        or ""
    )
    history.append({"role": "assistant", "content": answer})
    answers.append(answer)


def test_friction_appears_on_the_peers_spans(peer):
    answers: list[str] = []
    with LocalLLMServer() as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test")
        corrected = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "How do I activate my new card?"},
        ]
        _chat(client, corrected, answers)
        corrected.append(
            {"role": "user", "content": "No, I meant my credit card, not the debit card."}
        )
        _chat(client, corrected, answers)
        rephrased = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What is the fee for a transfer abroad?"},
        ]
        _chat(client, rephrased, answers)
        rephrased.append(
            {"role": "user", "content": "What fee do you charge for a transfer abroad?"}
        )
        _chat(client, rephrased, answers)
    spans = peer.spans()
    assert len(spans) == 4, [s.name for s in spans]
    kinds = [s.attributes.get(sc.FRICTION_KIND) for s in spans]
    assert kinds == [None, sc.FRICTION_CORRECTION, None, sc.FRICTION_REPHRASE]
    assert [s.attributes[sc.CONVERSATION_TURN] for s in spans] == [1, 2, 1, 2]
    assert (
        spans[0].attributes[sc.CONVERSATION_ID]
        == spans[1].attributes[sc.CONVERSATION_ID]
        != spans[2].attributes[sc.CONVERSATION_ID]
    )
    assert spans[1].attributes[sc.REVIEW_NEEDED] is True
    evaluations = [e for e in spans[1].events if e.name == sc.GEN_AI_EVALUATION_RESULT]
    assert [e.attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] for e in evaluations] == [
        sc.FRICTION_CORRECTION
    ]
    assert [s.attributes[sc.OUTPUT_CHARS] for s in spans] == [len(a) for a in answers]
    for span in spans:  # the per-call attributes, mapped from the peer's names
        a = span.attributes
        assert a[sc.GEN_AI_OPERATION_NAME] == "chat" and a[sc.GEN_AI_PROVIDER_NAME] == "openai"
        assert a[sc.GEN_AI_REQUEST_MODEL] == "gpt-test" and a[
            sc.GEN_AI_RESPONSE_FINISH_REASONS
        ] == ("stop",)
        assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] > 0 and a[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
        assert a[sc.OUTPUT_TRUNCATED] is False and a[sc.OUTPUT_REFUSAL] is False
        assert a[sc.OUTPUT_FORMAT_VALID] is True and a[sc.DRIFT_STREAM].startswith(
            "openai/gpt-test/sys-"
        )
    for made, exported in zip(
        peer.spans(peer.raw), spans
    ):  # the peer's attributes untouched, no text added
        added = set(exported.attributes) - set(made.attributes)
        assert {k: exported.attributes[k] for k in made.attributes} == dict(made.attributes)
        texts = [m["content"] for m in corrected + rephrased]
        assert not [k for k in added if any(t in str(exported.attributes[k]) for t in texts)]


class _Provider:
    """Answers a JSON route; after ``change_at`` calls the provider silently serves another
    model version that wraps its JSON in a preamble and a code fence."""

    def __init__(self, change_at: int) -> None:
        self.change_at = change_at
        self.calls = 0

    def __call__(self, request: ReceivedRequest) -> Reply:
        if (request.json.get("messages") or [{}])[0].get("content") != JSON_SYSTEM:
            return default_responder(request)
        self.calls += 1
        # ids of one width, in no order: drift is watched from the 32nd call, and ids counting
        # up (wider, other digits) are a tiny but consistent change in length and content
        order = random.Random(self.calls).randrange(10_000)
        body = json.dumps({"order_id": f"A{order:04d}", "status": "paid"})
        if self.calls <= self.change_at:
            return Reply(content=body, model="gpt-test-2026-01", usage=Usage(30, 12))
        return Reply(
            content=f"Sure! Here is the JSON:\n```json\n{body}\n```",
            model="gpt-test-2026-11",
            usage=Usage(30, 20),
        )


def _learned_baseline(model: str) -> None:
    """Save what the drift stage learns over its warm-up on the JSON route, where ``instrument()``
    restores it: the app restarts warm, so a test needs a few calls, not ``WARMUP`` of them.
    Only the served-model history is kept: every other feature learns afresh."""
    options = Options.resolve()
    drift = DriftStage(features=["response_model"])
    provider = TracerProvider()
    provider.add_span_processor(SignalPipeline([Normalizer(options.salt_bytes()), drift]))
    tracer = provider.get_tracer("warm-up")
    for _ in range(WARMUP):
        tracer.start_span(
            "chat gpt-test",
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: "gpt-test",
                sc.GEN_AI_RESPONSE_MODEL: model,
                sc.GEN_AI_SYSTEM_INSTRUCTIONS: json.dumps(
                    [{"type": "text", "content": JSON_SYSTEM}]
                ),
            },
        ).end()
    assert StateFile(options.data_dir / STATE_FILE).save_stages({"drift": drift})


def _json_route(client: openai.OpenAI, calls: int) -> None:
    for i in range(calls):
        client.chat.completions.create(
            model="gpt-test",
            response_format={"type": "json_object"},
            messages=[
                {"role": "system", "content": JSON_SYSTEM},
                {"role": "user", "content": f"Order {i}: two books, paid."},
            ],
        )


def _assert_drift(spans: list, change_at: int, format_alarm: bool) -> None:
    before, after = spans[:change_at], spans[change_at:]
    early = [
        dict(e.attributes) for s in before for e in s.events if e.name == sc.DRIFT_EVENT
    ]  # timing moves with this host's load: reported (kind performance), never a content alarm
    assert all(a[sc.DRIFT_KIND] == sc.DRIFT_KIND_PERFORMANCE for a in early), early
    assert all(s.attributes[sc.OUTPUT_FORMAT_VALID] for s in before)
    assert all(
        s.attributes[sc.OUTPUT_FORMAT_VALID] is False and s.attributes[sc.OUTPUT_PREAMBLE]
        for s in after
    )
    assert {s.attributes[sc.OUTPUT_FORMAT_EXPECTED] for s in spans} == {sc.FORMAT_JSON}
    drift = [
        (i, e.attributes) for i, s in enumerate(after) for e in s.events if e.name == sc.DRIFT_EVENT
    ]
    alarms = {
        a[sc.DRIFT_FEATURE]: (i, a) for i, a in reversed(drift)
    }  # the first alarm of each feature
    at, model = alarms["response_model"]
    assert at == 2  # confirmed at the third call of the new model
    assert model[sc.DRIFT_SUSPECTED_CAUSE] == sc.DRIFT_CAUSE_PROVIDER_CHANGE
    assert model[sc.DRIFT_STREAM].startswith("openai/gpt-test/sys-")
    if format_alarm:
        assert {"format_invalid", "preamble", "code_fence"} <= set(alarms), sorted(alarms)
        assert all(a[sc.DRIFT_SUSPECTED_CAUSE] == sc.DRIFT_CAUSE_PROVIDER_CHANGE for _, a in drift)


@pytest.mark.parametrize("name", sorted(PEERS))
def test_drift_appears_on_the_peers_spans(name, monkeypatch):
    """A restarted app with a learned baseline: the provider silently serves another model."""
    _capture_content(monkeypatch, name)
    _learned_baseline("gpt-test-2026-01")
    change_at = 8
    with _instrumented(name) as run, LocalLLMServer(_Provider(change_at)) as server:
        _json_route(openai.OpenAI(base_url=server.openai_base_url, api_key="test"), change_at + 6)
    spans = run.spans()
    assert len(spans) == change_at + 6
    _assert_drift(spans, change_at, format_alarm=False)  # the format detectors are still learning


def test_drift_after_a_full_warm_up_on_peer_spans(monkeypatch):
    """Every detector learns from the peer's spans (``WARMUP`` real calls), then the change."""
    _capture_content(monkeypatch, "official")
    change_at = WARMUP + 8
    with _instrumented("official") as run, LocalLLMServer(_Provider(change_at)) as server:
        _json_route(openai.OpenAI(base_url=server.openai_base_url, api_key="test"), change_at + 6)
    spans = run.spans()
    assert len(spans) == change_at + 6
    _assert_drift(spans, change_at, format_alarm=True)


def test_without_content_capture_only_what_the_span_says():
    """The official instrumentation's default: no content, so no rephrase or correction."""
    with _instrumented("official") as run, LocalLLMServer() as server:
        server.script(Reply(content="A long answer cut", finish_reason="length"))
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test")
        history = [{"role": "user", "content": "How do I activate my new card?"}]
        _chat(client, history, [])
        history.append(
            {"role": "user", "content": "No, I meant my credit card, not the debit card."}
        )
        _chat(client, history, [])
    spans = run.spans()
    assert len(spans) == 2
    assert [s.attributes.get(sc.OUTPUT_TRUNCATED) for s in spans] == [
        True,
        False,
    ]  # from the finish reasons
    for span in spans:
        a = span.attributes
        assert (
            sc.GEN_AI_INPUT_MESSAGES not in a
            and sc.OUTPUT_CHARS not in a
            and sc.OUTPUT_FORMAT_VALID not in a
        )
        assert sc.FRICTION_KIND not in a and sc.OUTPUT_REFUSAL not in a
        assert (
            a[sc.DRIFT_STREAM] == "openai/gpt-test/default"
        )  # no system prompt seen: the default route


def test_spans_received_over_otlp_get_features_from_their_content(
    otlp_receiver, monkeypatch, tmp_path
):
    """What a collector does with another app's spans: decode, then the same pipeline."""
    module = pytest.importorskip("opentelemetry.instrumentation.openai_v2", reason="extra: peers")
    _capture_content(monkeypatch, "official")
    app = TracerProvider()  # the sending app: no frictionlens at all
    app.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True))
    )
    instrumentor = module.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=app)
    try:
        with LocalLLMServer() as server:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="test")
            history = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "How do I activate my new card?"},
            ]
            _chat(client, history, [])
            history.append(
                {"role": "user", "content": "No, I meant my credit card, not the debit card."}
            )
            _chat(client, history, [])
    finally:
        instrumentor.uninstrument()
    otlp_receiver.wait_for_spans(2)
    exported = InMemorySpanExporter()
    options = Options.resolve({"data_dir": tmp_path})
    pipeline = SignalPipeline(
        build_stages(options, NoOpMeterProvider().get_meter("t"), options.salt_bytes()),
        SimpleSpanProcessor(exported),
    )
    for span in otlp_receiver.readable_spans():
        pipeline.on_end(span)
    pipeline.shutdown()
    calls = [
        s
        for s in exported.get_finished_spans()
        if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == "chat"
    ]
    assert [s.attributes.get(sc.FRICTION_KIND) for s in calls] == [None, sc.FRICTION_CORRECTION]
    assert all(
        s.attributes[sc.OUTPUT_FORMAT_VALID] is True and s.attributes[sc.OUTPUT_CHARS] > 0
        for s in calls
    )
    assert any(
        s.name == sc.CONVERSATION_SPAN for s in exported.get_finished_spans()
    )  # closed at shutdown


APP = """
import sys, openai, frictionlens
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
OpenAIInstrumentor().instrument()           # before any SDK provider exists: the global proxy
frictionlens.instrument(providers=False)    # creates the provider, sets it globally
client = openai.OpenAI(base_url=sys.argv[1], api_key="test")
history = [{"role": "user", "content": "How do I activate my new card?"}]
for follow_up in ("No, I meant my credit card, not the debit card.", None):
    answer = client.chat.completions.create(model="gpt-test", messages=history).choices[0].message.content
    history += [{"role": "assistant", "content": answer}] + ([{"role": "user", "content": follow_up}] if follow_up else [])
"""


def test_an_app_without_its_own_sdk_setup(tmp_path):
    """The peer traces through the global provider that ``instrument(providers=False)`` creates."""
    pytest.importorskip("opentelemetry.instrumentation.openai_v2", reason="extra: peers")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FRICTIONLENS_"))}
    env.update(
        PEERS["official"][2],
        FRICTIONLENS_DATA_DIR=str(tmp_path / "store"),
        FRICTIONLENS_SAMPLE_RATE="1",
    )
    with LocalLLMServer() as server:
        subprocess.run(
            [sys.executable, "-c", APP, server.openai_base_url],
            env=env,
            check=True,
            timeout=60,
            cwd=tmp_path,
        )
    spans = [s for req in read_traces(tmp_path / "store") for s in readable_spans(req)]
    calls = [s for s in spans if s.instrumentation_scope.name == PEERS["official"][1]]
    assert [s.attributes.get(sc.FRICTION_KIND) for s in calls] == [None, sc.FRICTION_CORRECTION]
    assert any(s.name == sc.CONVERSATION_SPAN for s in spans)
