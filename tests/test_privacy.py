"""Privacy by default: with content capture off, no exported string holds any fragment of a
prompt or completion; with it on, the GenAI content attributes carry text truncated at the limit.

Varied conversations (OpenAI and Anthropic SDKs over real HTTP, chat, streams, tool calls,
friction, an agent task, feedback, errors echoing the prompt, a drift alarm, conversation
summaries) go to a real OTLP receiver and to the local file store at once. Every message and
completion is distinctive random text, so any leaked 12-character fragment is found.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

import frictionlens
from frictionlens import semconv as sc
from frictionlens.exporters.filestore import (
    FileMetricExporter,
    FileSpanExporter,
    read_metrics,
    read_traces,
)
from frictionlens.localserver import LocalLLMServer, ReceivedRequest, Reply
from frictionlens.processors.drift.design import FULL_BASELINE as WARMUP
from tests.sdks import anthropic_client

FRAGMENT = 12
TOOLS_OPENAI = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
]
TOOLS_ANTHROPIC = [{"name": "lookup", "input_schema": {"type": "object"}}]


class Texts:
    """Distinctive random lowercase text; remembers everything it made or was shown."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seen: list[str] = []

    def __call__(self, words: int = 8) -> str:
        made = " ".join(
            "".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(4, 9)))
            for _ in range(words)
        )
        self.seen.append(made)
        return made

    def fragments(self) -> set[str]:
        return {t[i : i + FRAGMENT] for t in self.seen for i in range(len(t) - FRAGMENT + 1)}


class Server(LocalLLMServer):
    """Answers every request with fresh random text (or a scripted reply) and records it."""

    def __init__(self, texts: Texts) -> None:
        super().__init__(self._answer)
        self.texts = texts
        self.model: str | None = None

    def _answer(self, request: ReceivedRequest) -> Reply:
        return Reply(content=self.texts(), model=self.model)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def leaks(exported: list[str], fragments: set[str]) -> list[str]:
    """Exported strings that contain one of ``fragments``."""
    return [
        s
        for s in exported
        if any(s[i : i + FRAGMENT] in fragments for i in range(len(s) - FRAGMENT + 1))
    ]


@pytest.fixture
def app(otlp_receiver, tmp_path):
    """An app whose own OpenTelemetry SDK exports to the receiver and to the file store."""
    store = tmp_path / "store"
    tp = TracerProvider(resource=Resource.create({"service.name": "privacy-app"}))
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True))
    )
    tp.add_span_processor(SimpleSpanProcessor(FileSpanExporter(store)))
    never = 3_600_000  # metrics are exported once, at shutdown
    mp = MeterProvider(
        resource=tp.resource,
        metric_readers=[
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True),
                export_interval_millis=never,
            ),
            PeriodicExportingMetricReader(FileMetricExporter(store), export_interval_millis=never),
        ],
    )
    texts = Texts(seed=10)
    with Server(texts) as server:

        def start(**options: Any) -> Server:
            frictionlens.instrument(
                tracer_provider=tp, meter_provider=mp, providers=["openai", "anthropic"], **options
            )
            return server

        def finish() -> dict[str, list[dict[str, Any]]]:
            frictionlens.uninstrument()  # closes conversations: summary spans
            tp.shutdown()
            mp.shutdown()
            messages = {
                "otlp": [*otlp_receiver.requests("traces"), *otlp_receiver.requests("metrics")],
                "file": [*read_traces(store), *read_metrics(store)],
            }
            return {sink: [MessageToDict(m) for m in found] for sink, found in messages.items()}

        yield texts, start, finish


def converse(server: Server, t: Texts, *, drift: bool) -> None:
    """Every kind of call and signal the library exports something for."""
    oa = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    an = anthropic_client(base_url=server.anthropic_base_url, api_key="k", max_retries=0)

    def ask(history: list[dict[str, Any]], **kw: Any) -> str:
        answer = (
            oa.chat.completions.create(model="gpt-x", messages=history, **kw)
            .choices[0]
            .message.content
            or ""
        )
        history.append({"role": "assistant", "content": answer})
        return answer

    # an inferred conversation: turns, a regenerate, a correction, a repeat, feedback
    history: list[dict[str, Any]] = [
        {"role": "system", "content": t()},
        {"role": "user", "content": t()},
    ]
    ask(history)
    history.append({"role": "user", "content": t()})
    ask(history)
    ask(history[:-1])  # regenerate the same turn
    t.seen.append("No, that is wrong, I meant " + t())
    history.append({"role": "user", "content": t.seen[-1]})
    ask(history)
    frictionlens.feedback("thumbs_down")
    # a session with streams: to the end, and abandoned after one chunk
    with frictionlens.session("support-1", user_id="user-7"):
        msgs = [{"role": "user", "content": t()}]
        "".join(
            c.choices[0].delta.content or ""
            for c in oa.chat.completions.create(
                model="gpt-x", messages=msgs, stream=True, stream_options={"include_usage": True}
            )
            if c.choices
        )
        stream = oa.chat.completions.create(model="gpt-x", messages=msgs, stream=True)
        next(iter(stream))
        stream.close()
    # an agent task: tool call with random arguments, the tool's result, a tool that fails
    with frictionlens.task("agent", expected_steps=2):
        args = json.dumps({"query": t()})
        server.script(Reply(tool_calls=[("lookup", args)]))
        msgs = [{"role": "user", "content": t()}]
        call = (
            oa.chat.completions.create(model="gpt-x", messages=msgs, tools=TOOLS_OPENAI)
            .choices[0]
            .message.tool_calls[0]
        )
        with frictionlens.tool("lookup", call_id=call.id):
            result = t()
        with pytest.raises(ValueError), frictionlens.tool("lookup"):
            raise ValueError(f"no record for {t()}")  # an app error quoting the user
        msgs += [
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": result},
        ]
        ask(msgs, tools=TOOLS_OPENAI)
    # an error whose message echoes the prompt, as providers' validation errors do
    prompt = t()
    server.script(Reply(status=400, error=f"invalid content: {prompt}"))
    with pytest.raises(openai.BadRequestError):
        oa.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": prompt}])
    # Anthropic: system prompt, create, stream, tool use
    system, msgs = t(), [{"role": "user", "content": t()}]
    an.messages.create(model="claude-x", max_tokens=64, system=system, messages=msgs)
    with an.messages.stream(
        model="claude-x", max_tokens=64, system=system, messages=msgs
    ) as stream:
        "".join(stream.text_stream)
    server.script(Reply(tool_calls=[("lookup", json.dumps({"city": t()}))]))
    an.messages.create(
        model="claude-x",
        max_tokens=64,
        messages=[{"role": "user", "content": t()}],
        tools=TOOLS_ANTHROPIC,
    )
    if drift:  # a stream's baseline, then the provider silently serves another model
        for i in range(WARMUP + 40):
            server.model = "drift-m-2" if i >= WARMUP else "drift-m-1"
            oa.chat.completions.create(
                model="drift-m", messages=[{"role": "user", "content": t(3)}]
            )


def _spans(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s
        for r in requests
        for rs in r.get("resourceSpans", [])
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]


def test_nothing_said_is_exported_without_capture(app):
    texts, start, finish = app
    server = start()
    converse(server, texts, drift=True)
    exported = finish()
    fragments = texts.fragments()
    assert len(texts.seen) > WARMUP and len(fragments) > 10_000
    for sink, requests in exported.items():
        spans = _spans(requests)
        names = {s["name"] for s in spans}
        assert {
            "chat gpt-x",
            "chat claude-x",
            sc.CONVERSATION_SPAN,
            "invoke_agent agent",
            "execute_tool lookup",
        } <= names
        events = {e["name"] for s in spans for e in s.get("events", [])}
        assert {sc.DRIFT_EVENT, sc.GEN_AI_EVALUATION_RESULT, sc.EXCEPTION_EVENT} <= events, (
            sink,
            events,
        )
        metric_names = {
            m["name"]
            for r in requests
            for rm in r.get("resourceMetrics", [])
            for sm in rm["scopeMetrics"]
            for m in sm["metrics"]
        }
        assert {
            sc.METRIC_FRICTION_EVENTS,
            sc.METRIC_CONVERSATIONS,
            sc.METRIC_DRIFT_ALERTS,
        } <= metric_names
        strings = [s for r in requests for s in _strings(r)]
        assert not any(sc.GEN_AI_INPUT_MESSAGES in s for s in strings)
        assert leaks(strings, fragments) == [], sink


def test_captured_content_is_there_and_truncated(app):
    texts, start, finish = app
    limit = 30
    server = start(capture_content=True, content_max_chars=limit)
    converse(server, texts, drift=False)
    exported = finish()
    for sink, requests in exported.items():
        strings = [s for r in requests for s in _strings(r)]
        assert leaks(strings, texts.fragments()), sink  # the check finds text when text is there
        calls = [s for s in _spans(requests) if s["name"].startswith("chat ")]
        assert calls
        for span in calls:
            attrs = {a["key"]: a["value"].get("stringValue") for a in span["attributes"]}
            parts = [
                (key, m["role"], p)
                for key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES)
                if attrs.get(key)
                for m in json.loads(attrs[key])
                for p in m["parts"]
            ]
            assert parts, span["name"]
            for key, role, part in parts:
                text = part.get("content", part.get("arguments"))
                assert 0 < len(text) <= limit
                if part["type"] == "text" and (role == "user" or key == sc.GEN_AI_OUTPUT_MESSAGES):
                    assert any(seen.startswith(text) for seen in texts.seen), text
