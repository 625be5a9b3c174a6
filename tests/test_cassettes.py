"""Recorded real traffic: every cassette of the shared corpus replayed through the real SDKs.

The cassettes (``corpus/cassettes`` in the shared folder; see its README for origin and
licence) hold real OpenAI and Anthropic HTTP traffic recorded by other projects. Each
interaction is replayed offline with vcrpy as the SDK call that made it, with our
instrumentation and the whole signal pipeline on, and the span is checked against the
recorded response body: one GenAI span per call, token usage and finish reasons equal to
the body, truncation / refusal / format flags consistent with the recorded output, and no
internal error. Legacy ``completions`` calls included. ``python3 -m tests.test_cassettes``
prints calls per provider and endpoint with what their spans say (the table in
docs/quality.md).
"""

from __future__ import annotations

import gzip
import inspect
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anthropic
import openai
import pytest
import vcr
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frictionlens import health
from frictionlens.config import Options
from frictionlens.instrumentation.anthropic import AnthropicInstrumentor
from frictionlens.instrumentation.openai import OpenAIInstrumentor
from frictionlens.instrumentation.telemetry import Telemetry
from frictionlens.processors.pipeline import SignalPipeline
from frictionlens.runtime import build_stages
from tests.conftest import SHARED
from tests.sdks import ANTHROPIC_HAS_TRACING, anthropic_client

CORPUS = SHARED / "corpus" / "cassettes"
_INDEX = CORPUS / "index.jsonl"
CASSETTES = (
    [json.loads(line)["file"] for line in _INDEX.read_text().splitlines()]
    if _INDEX.is_file()
    else []
)

#: path suffix -> (SDK, endpoint kind); the base URL is everything in front of the suffix
ENDPOINTS = {
    "/chat/completions": ("openai", "chat"),
    "/responses": ("openai", "responses"),
    "/embeddings": ("openai", "embeddings"),
    "/completions": ("openai", "completions"),
    "/v1/messages": ("anthropic", "messages"),
}
#: endpoint kind -> gen_ai.operation.name of its span
OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "messages": "chat",
    "beta messages": "chat",
}
_REPLAY = vcr.VCR(
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path"],
    decode_compressed_response=False,
)


# -- the recorded side -----------------------------------------------------------------------
@dataclass
class Recorded:
    """What the recorded response body says, read independently of the instrumentation."""

    status: int
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reasons: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tool_args: list[str] = field(default_factory=list)
    refusal: bool = False
    truncated: bool = False


def _body_text(response: dict[str, Any]) -> str:
    raw = response["body"]["string"]
    headers = {k.lower(): v for k, v in response["headers"].items()}
    if isinstance(raw, str):
        return raw
    if "gzip" in "".join(headers.get("content-encoding", [])):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def _sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
            events.append(json.loads(line[5:]))
    return events


def _is_sse(response: dict[str, Any]) -> bool:
    headers = {k.lower(): v for k, v in response["headers"].items()}
    return any("text/event-stream" in v for v in headers.get("content-type", []))


def _openai_usage(rec: Recorded, usage: dict[str, Any] | None) -> None:
    if usage:
        rec.input_tokens = usage.get("prompt_tokens", usage.get("input_tokens"))
        rec.output_tokens = usage.get("completion_tokens", usage.get("output_tokens"))


def _anthropic_usage(rec: Recorded, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    if "input_tokens" in usage:
        rec.input_tokens = (
            usage["input_tokens"]
            + (usage.get("cache_read_input_tokens") or 0)
            + (usage.get("cache_creation_input_tokens") or 0)
        )
    if "output_tokens" in usage:
        rec.output_tokens = usage["output_tokens"]


def _chat(rec: Recorded, body: Any, stream: bool) -> None:
    if not stream:
        body = [body]
    texts: dict[int, list[str]] = {}
    args: dict[tuple[int, int], list[str]] = {}
    for item in body:
        _openai_usage(rec, item.get("usage"))
        for choice in item.get("choices") or ():
            msg = choice.get("delta" if stream else "message") or {}
            texts.setdefault(choice.get("index", 0), []).append(msg.get("content") or "")
            rec.refusal = rec.refusal or bool(msg.get("refusal"))
            legacy = (
                [{"index": 0, "function": msg["function_call"]}] if msg.get("function_call") else []
            )
            for j, call in enumerate(msg.get("tool_calls") or legacy):
                key = (choice.get("index", 0), call.get("index", j))
                args.setdefault(key, []).append((call.get("function") or {}).get("arguments") or "")
            if choice.get("finish_reason"):
                rec.finish_reasons.append(choice["finish_reason"])
    rec.texts = ["".join(t) for t in texts.values()]
    rec.tool_args = ["".join(a) for a in args.values()]
    rec.truncated = "length" in rec.finish_reasons


def _completions(rec: Recorded, body: Any, stream: bool) -> None:
    """Legacy completions: a text per choice; streamed chunks have the same shape."""
    texts: dict[int, list[str]] = {}
    for item in body if stream else [body]:
        _openai_usage(rec, item.get("usage"))
        for choice in item.get("choices") or ():
            texts.setdefault(choice.get("index", 0), []).append(choice.get("text") or "")
            if choice.get("finish_reason"):
                rec.finish_reasons.append(choice["finish_reason"])
    rec.texts = ["".join(t) for t in texts.values()]
    rec.truncated = "length" in rec.finish_reasons


def _responses(rec: Recorded, body: Any, stream: bool) -> None:
    if stream:
        done = [
            e["response"]
            for e in body
            if e.get("type") in ("response.completed", "response.incomplete", "response.failed")
        ]
        if not done:
            return
        body = done[-1]
    _openai_usage(rec, body.get("usage"))
    texts = []
    for item in body.get("output") or ():
        if item.get("type") == "message":
            for part in item.get("content") or ():
                rec.refusal = rec.refusal or part.get("type") == "refusal"
                texts.append(part.get("text") or "")
        elif item.get("type") == "function_call":
            rec.tool_args.append(item.get("arguments") or "")
    rec.texts = ["".join(texts)]
    incomplete = body.get("status") == "incomplete"
    rec.truncated = (
        incomplete and (body.get("incomplete_details") or {}).get("reason") == "max_output_tokens"
    )
    if body.get("status") == "completed":
        rec.finish_reasons = ["tool_calls" if rec.tool_args else "stop"]
    elif incomplete:
        rec.finish_reasons = (
            ["length"]
            if rec.truncated
            else [(body.get("incomplete_details") or {}).get("reason") or "incomplete"]
        )


def _messages(rec: Recorded, body: Any, stream: bool) -> None:
    if stream:
        msg: dict[str, Any] = {"content": []}
        for event in body:
            kind = event.get("type")
            if kind == "message_start":
                msg = {**event["message"], "content": []}
            elif kind == "content_block_start":
                msg["content"].append(dict(event["content_block"], text="", partial=""))
            elif kind == "content_block_delta":
                delta = event["delta"]
                block = msg["content"][-1]
                block["text"] += delta.get("text") or ""
                block["partial"] += delta.get("partial_json") or ""
            elif kind == "message_delta":
                msg["stop_reason"] = event["delta"].get("stop_reason")
                msg["usage"] = {**msg.get("usage", {}), **(event.get("usage") or {})}
        body = msg
    _anthropic_usage(rec, body.get("usage"))
    rec.texts = [
        "".join(b.get("text") or "" for b in body.get("content") or () if b.get("type") == "text")
    ]
    rec.tool_args = [
        b.get("partial") or json.dumps(b.get("input") or {})
        for b in body.get("content") or ()
        if b.get("type") == "tool_use"
    ]
    reason = body.get("stop_reason")
    rec.finish_reasons = [reason] if reason else []
    rec.truncated = reason == "max_tokens"
    rec.refusal = reason == "refusal"


def _embeddings(rec: Recorded, body: Any, stream: bool) -> None:
    _openai_usage(rec, body.get("usage"))


_READERS = {
    "chat": _chat,
    "completions": _completions,
    "responses": _responses,
    "messages": _messages,
    "beta messages": _messages,
    "embeddings": _embeddings,
}


def recorded(kind: str, response: dict[str, Any]) -> Recorded:
    rec = Recorded(status=response["status"]["code"])
    if rec.status >= 400 or kind not in _READERS:
        return rec
    text = _body_text(response)
    stream = _is_sse(response)
    _READERS[kind](rec, _sse_events(text) if stream else json.loads(text), stream)
    return rec


# -- the replay side ---------------------------------------------------------------------------
def _endpoint(uri: str) -> tuple[str, str, str, dict[str, str]]:
    """(sdk, kind, base_url, default query) for a recorded request URI."""
    parts = urlsplit(uri)
    for suffix, (sdk, kind) in ENDPOINTS.items():
        if parts.path.endswith(suffix):
            base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(suffix)]}"
            query = (
                {k: v[0] for k, v in parse_qs(parts.query).items()}
                if "azure" in parts.netloc
                else {}
            )
            return sdk, kind, base, query
    raise AssertionError(f"unknown endpoint {uri}")


@cache
def _client(
    sdk: str, base_url: str, query: tuple[tuple[str, str], ...], tracer_provider: Any
) -> Any:
    if sdk == "anthropic":  # the SDK's own tracing on, into the same exporter: it must stay silent
        tracing = {"tracer_provider": tracer_provider} if ANTHROPIC_HAS_TRACING else False
        return anthropic_client(base_url=base_url, api_key="x", sdk_tracing=tracing)
    return openai.OpenAI(base_url=base_url, api_key="x", default_query=dict(query) or None)


_METHODS = {
    "chat": lambda c: c.chat.completions.create,
    "responses": lambda c: c.responses.create,
    "embeddings": lambda c: c.embeddings.create,
    "completions": lambda c: c.completions.create,
    "messages": lambda c: c.messages.create,
    "beta messages": lambda c: c.beta.messages.create,
}


def _accepted(method: Any) -> set[str]:
    return set(inspect.signature(method).parameters)


def _call(client: Any, kind: str, body: dict[str, Any]) -> None:
    method = _METHODS[kind](client)
    names = _accepted(method)
    kwargs = {k: v for k, v in body.items() if k in names}
    extra = {k: v for k, v in body.items() if k not in names}
    if extra:
        kwargs["extra_body"] = extra
    result = method(**kwargs)
    if body.get("stream"):
        for _ in result:
            pass


@contextmanager
def instrumentation() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """Both instrumentors feeding the whole signal pipeline, spans kept in memory."""
    exporter = InMemorySpanExporter()
    meter = MeterProvider().get_meter("cassettes")
    pipeline = SignalPipeline(
        build_stages(Options.resolve({}), meter, b"salt"), downstream=SimpleSpanProcessor(exporter)
    )
    tp = TracerProvider()
    tp.add_span_processor(pipeline)
    telemetry = Telemetry(tp, meter, salt=b"salt")
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for inst in instrumentors:
        inst.instrument(telemetry=telemetry, skip_dep_check=True)
    try:
        yield tp, exporter
    finally:
        for inst in instrumentors:
            inst.uninstrument()
        pipeline.shutdown()


@pytest.fixture(scope="module")
def instrumented() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    with instrumentation() as pair:
        yield pair


def _genai(exporter: InMemorySpanExporter) -> list[Any]:
    return [
        s for s in exporter.get_finished_spans() if "gen_ai.operation.name" in (s.attributes or {})
    ]


def _requested_json(kind: str, body: dict[str, Any]) -> bool:
    fmt = (
        body.get("response_format")
        or (body.get("text") or {}).get("format")
        or body.get("output_format")
        or (body.get("output_config") or {}).get("format")
        or {}
    )
    return fmt.get("type") in ("json_object", "json_schema")


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def check_span(
    kind: str, body: dict[str, Any], rec: Recorded, attrs: dict[str, Any], where: str
) -> None:
    """The span against the recorded body (see module docstring)."""
    if rec.status >= 400:
        assert attrs.get("error.type"), where
        return
    assert "error.type" not in attrs, where
    assert attrs.get("gen_ai.usage.input_tokens") == rec.input_tokens, where
    if kind == "embeddings":
        return
    assert attrs.get("gen_ai.usage.output_tokens") == rec.output_tokens, where
    assert list(attrs.get("gen_ai.response.finish_reasons", ())) == rec.finish_reasons, where
    assert attrs["frictionlens.output.truncated"] is rec.truncated, where
    if rec.refusal:
        assert attrs["frictionlens.output.refusal"] is True, where
    if rec.tool_args:
        assert attrs["frictionlens.output.format.expected"] == "tool_call", where
        assert attrs["frictionlens.output.format.valid"] is all(
            _parses(a) for a in rec.tool_args
        ), where
    elif _requested_json(kind, body) and not rec.refusal:
        assert attrs["frictionlens.output.format.expected"] in ("json", "json_schema"), where
        if not rec.truncated:
            assert attrs["frictionlens.output.format.valid"] is _parses(rec.texts[0].strip()), where
    if rec.texts and not rec.tool_args:
        assert attrs["frictionlens.output.chars"] == len("\n".join(rec.texts)), where


@dataclass
class Replayed:
    """One replayed call: its label for the coverage table, its span's attributes and the
    recorded answer."""

    label: str
    attrs: dict[str, Any]
    recorded: Recorded


def replay(path: Path, tp: Any, exporter: InMemorySpanExporter) -> list[Replayed]:
    """Replay one cassette call by call, checking each span against the recorded body."""
    done: list[Replayed] = []
    with _REPLAY.use_cassette(str(path), allow_playback_repeats=False) as cassette:
        for i, (request, response) in enumerate(cassette.data):
            if cassette.play_counts[i]:  # consumed by an earlier call's SDK retries
                continue
            sdk, kind, base, query = _endpoint(request.uri)
            if "beta=true" in request.uri:  # recorded through the SDK's beta resource
                kind = "beta messages"
            body = json.loads(request.body)
            rec = recorded(kind, response)
            exporter.clear()
            client = _client(sdk, base, tuple(sorted(query.items())), tp)
            where = f"{path.name}#{i} {kind}"
            played = cassette.play_count
            try:
                _call(client, kind, body)
            except (openai.APIStatusError, anthropic.APIStatusError) as exc:
                assert rec.status >= 400 and exc.status_code == rec.status, where
            else:
                assert rec.status < 400, where
            spans = _genai(exporter)
            label = f"{kind}" + (" (stream)" if body.get("stream") else "")
            assert len(spans) == 1, (where, [s.name for s in spans])
            attrs = dict(spans[0].attributes)
            assert attrs["gen_ai.operation.name"] == OPERATIONS[kind], where
            label = f"{attrs['gen_ai.provider.name']} {label}"
            assert attrs["frictionlens.retry.count"] == cassette.play_count - played - 1, (
                where
            )  # attempts beyond the first
            check_span(kind, body, rec, attrs, where)
            done.append(Replayed(label, attrs, rec))
    return done


@pytest.fixture
def corpus(shared_dir: Path) -> Path:
    root = shared_dir / "corpus" / "cassettes"
    if not (root / "index.jsonl").is_file():
        pytest.skip("the recorded-traffic corpus (corpus/cassettes in the shared folder) is absent")
    return root


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, id=name.rsplit("/cassettes/", 1)[-1]) for name in CASSETTES]
    or [
        pytest.param(
            "", marks=pytest.mark.skip(reason="the shared recorded-traffic corpus is absent")
        )
    ],
)
def test_cassette_replays(name: str, corpus: Path, instrumented: Any) -> None:
    tp, exporter = instrumented
    before = sum(health.internal_errors().values())
    replay(corpus / name, tp, exporter)
    assert sum(health.internal_errors().values()) == before


def main() -> None:
    """Replay the whole corpus and print, per SDK endpoint, the calls and what their spans say."""
    columns = (
        "calls",
        "recorded error",
        "truncated",
        "refusal (recorded)",
        "refusal (text cue only)",
        "tool calls",
        "JSON expected",
        "format invalid",
        "SDK retries",
    )
    table: dict[str, Counter[str]] = {}
    files = 0
    with instrumentation() as (tp, exporter):
        for name in CASSETTES:
            files += 1
            for call in replay(CORPUS / name, tp, exporter):
                row = table.setdefault(call.label, Counter())
                a = call.attrs
                row["calls"] += 1
                row["recorded error"] += call.recorded.status >= 400
                row["truncated"] += bool(a.get("frictionlens.output.truncated"))
                row["refusal (recorded)"] += call.recorded.refusal
                row["refusal (text cue only)"] += (
                    bool(a.get("frictionlens.output.refusal")) and not call.recorded.refusal
                )
                row["tool calls"] += bool(call.recorded.tool_args)
                row["JSON expected"] += a.get("frictionlens.output.format.expected") in (
                    "json",
                    "json_schema",
                )
                row["format invalid"] += a.get("frictionlens.output.format.valid") is False
                row["SDK retries"] += a.get("frictionlens.retry.count", 0)
    print(f"{files} cassettes, {sum(r['calls'] for r in table.values())} calls\n")
    print("| endpoint | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for label in sorted(table):
        print(f"| {label} | " + " | ".join(str(table[label][c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
