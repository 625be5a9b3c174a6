"""Anthropic instrumentation: the real ``anthropic`` SDK over real HTTP against the local server."""

from __future__ import annotations

import asyncio
import json

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frictionlens.instrumentation.anthropic import AnthropicInstrumentor
from frictionlens.instrumentation.telemetry import Telemetry
from frictionlens.localserver import LocalLLMServer, Reply, Usage
from tests.sdks import (
    anthropic_client,
    needs_anthropic_structured_output,
    needs_anthropic_tracing,
)

#: the SDK instrumentation tests, run on the newest and the oldest SDK releases we support
pytestmark = pytest.mark.sdk

FAST = {"retry-after-ms": "1"}
MSG = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def server():
    with LocalLLMServer() as s:
        yield s


@pytest.fixture
def spans(server):
    server.reset()
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    inst = AnthropicInstrumentor()
    inst.instrument(telemetry=Telemetry(tp, MeterProvider().get_meter("t"), salt=b"s"))
    yield exporter
    inst.uninstrument()


def _client(server, **kw):
    return anthropic_client(base_url=server.anthropic_base_url, api_key="x", **kw)


def _aclient(server, **kw):
    return anthropic_client(
        anthropic.AsyncAnthropic, base_url=server.anthropic_base_url, api_key="x", **kw
    )


def _genai(exporter):
    return [
        s for s in exporter.get_finished_spans() if "gen_ai.operation.name" in (s.attributes or {})
    ]


def _one(exporter):
    found = _genai(exporter)
    assert len(found) == 1, [s.name for s in found]
    return found[0].attributes


def test_create_text(server, spans):
    server.script(Reply(content="Paris is the capital.", usage=Usage(10, 5)))
    resp = _client(server).messages.create(
        model="claude-x", max_tokens=100, system="Be brief.", messages=MSG
    )
    assert resp.content[0].text == "Paris is the capital."
    a = _one(spans)
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "claude-x"
    assert a["gen_ai.response.id"] == resp.id
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["gen_ai.usage.input_tokens"] == 10
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["frictionlens.output.chars"] == len("Paris is the capital.")
    assert a["frictionlens.output.truncated"] is False
    assert a["frictionlens.output.refusal"] is False
    assert a["frictionlens.retry.count"] == 0


def test_create_stream_to_end(server, spans):
    server.script(Reply(content="Paris is the capital of France.", usage=Usage(12, 7)))
    stream = _client(server).messages.create(
        model="claude-x", max_tokens=100, messages=MSG, stream=True
    )
    text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    assert text == "Paris is the capital of France."
    a = _one(spans)
    assert a["frictionlens.stream.abandoned"] is False
    assert a["frictionlens.output.chars"] == len(text)
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 7
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["gen_ai.request.stream"] is True


def test_create_stream_closed_early(server, spans):
    server.script(Reply(content="one two three four five six seven eight"))
    stream = _client(server).messages.create(
        model="claude-x", max_tokens=100, messages=MSG, stream=True
    )
    next(iter(stream))
    stream.close()
    assert _one(spans)["frictionlens.stream.abandoned"] is True


def test_messages_stream_helper(server, spans):
    server.script(Reply(content="Paris it is.", usage=Usage(3, 4)))
    with _client(server).messages.stream(model="claude-x", max_tokens=100, messages=MSG) as stream:
        text = "".join(stream.text_stream)
    assert text == "Paris it is."
    a = _one(spans)
    assert a["frictionlens.stream.abandoned"] is False
    assert a["frictionlens.output.chars"] == len(text)
    assert a["gen_ai.usage.output_tokens"] == 4


def test_messages_stream_helper_left_early(server, spans):
    server.script(Reply(content="one two three four five six seven eight"))
    with _client(server).messages.stream(model="claude-x", max_tokens=100, messages=MSG) as stream:
        next(iter(stream))
    assert _one(spans)["frictionlens.stream.abandoned"] is True


def test_tool_use(server, spans):
    server.script(Reply(tool_calls=[("lookup", '{"city": "Paris"}')]))
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    resp = _client(server).messages.create(
        model="claude-x", max_tokens=100, messages=MSG, tools=tools, tool_choice={"type": "any"}
    )
    assert resp.stop_reason == "tool_use"
    a = _one(spans)
    assert a["frictionlens.output.format.expected"] == "tool_call"
    assert a["frictionlens.output.format.valid"] is True
    assert a["gen_ai.response.finish_reasons"] == ("tool_use",)
    assert a["frictionlens.output.chars"] == len(json.dumps({"city": "Paris"}))


def test_tool_use_stream(server, spans):
    server.script(Reply(tool_calls=[("lookup", '{"city": "Paris"}')]))
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    with _client(server).messages.stream(
        model="claude-x", max_tokens=100, messages=MSG, tools=tools
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    a = _one(spans)
    assert a["frictionlens.output.format.expected"] == "tool_call"
    assert a["frictionlens.output.format.valid"] is True


def test_history_with_tool_result(server, spans):
    server.script(Reply(content="It is sunny."))
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
        },
    ]
    _client(server).messages.create(
        model="claude-x", max_tokens=100, messages=history, system=[{"type": "text", "text": "sys"}]
    )
    assert _one(spans)["gen_ai.response.finish_reasons"] == ("end_turn",)


def test_max_tokens_truncation(server, spans):
    server.script(Reply(content="Paris is", finish_reason="max_tokens"))
    _client(server).messages.create(model="claude-x", max_tokens=2, messages=MSG)
    a = _one(spans)
    assert a["frictionlens.output.truncated"] is True
    assert a["gen_ai.request.max_tokens"] == 2


def test_refusal(server, spans):
    server.script(Reply(content="", finish_reason="refusal"))
    _client(server).messages.create(model="claude-x", max_tokens=20, messages=MSG)
    assert _one(spans)["frictionlens.output.refusal"] is True


def test_cache_tokens_count_as_input(server, spans):
    server.script(
        Reply(
            content="ok",
            usage=Usage(10, 2, cache_creation_input_tokens=30, cache_read_input_tokens=100),
        )
    )
    _client(server).messages.create(model="claude-x", max_tokens=20, messages=MSG)
    a = _one(spans)
    assert a["gen_ai.usage.input_tokens"] == 140
    assert a["gen_ai.usage.cache_read.input_tokens"] == 100
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 30


@needs_anthropic_structured_output
def test_json_schema_expected(server, spans):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    server.script(Reply(content='{"city": "Paris"}'))
    _client(server).messages.create(
        model="claude-x",
        max_tokens=50,
        messages=MSG,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    a = _one(spans)
    assert a["frictionlens.output.format.expected"] == "json_schema"
    assert a["frictionlens.output.format.valid"] is True


def test_retry_then_success(server, spans):
    server.script(Reply(status=429, headers=FAST), Reply(content="ok"))
    _client(server).messages.create(model="claude-x", max_tokens=20, messages=MSG)
    assert _one(spans)["frictionlens.retry.count"] == 1


def test_server_error_exhausts_retries(server, spans):
    server.script(*[Reply(status=500, headers=FAST)] * 3)
    with pytest.raises(anthropic.InternalServerError):
        _client(server, max_retries=2).messages.create(
            model="claude-x", max_tokens=20, messages=MSG
        )
    a = _one(spans)
    assert a["error.type"] == "InternalServerError"
    assert a["frictionlens.retry.count"] == 2


def test_async_create_and_stream(server, spans):
    async def run():
        client = _aclient(server)
        server.script(
            Reply(content="Paris."), Reply(content="Paris again."), Reply(content="Paris thrice.")
        )
        await client.messages.create(model="claude-x", max_tokens=20, messages=MSG)
        stream = await client.messages.create(
            model="claude-x", max_tokens=20, messages=MSG, stream=True
        )
        pieces = [e.delta.text async for e in stream if e.type == "content_block_delta"]
        async with client.messages.stream(model="claude-x", max_tokens=20, messages=MSG) as s:
            helper = "".join([t async for t in s.text_stream])
        await client.close()
        return "".join(pieces), helper

    text, helper = asyncio.run(run())
    assert (text, helper) == ("Paris again.", "Paris thrice.")
    found = sorted(_genai(spans), key=lambda s: s.start_time)
    assert len(found) == 3
    assert found[0].attributes["frictionlens.output.chars"] == len("Paris.")
    assert found[1].attributes["frictionlens.stream.abandoned"] is False
    assert found[1].attributes["frictionlens.output.chars"] == len(text)
    assert found[2].attributes["frictionlens.output.chars"] == len(helper)


@needs_anthropic_tracing
@pytest.mark.parametrize("sdk_tracing", [True, False])
def test_one_genai_span_with_sdk_tracing(server, spans, sdk_tracing):
    """The SDK's own call span (its tracing on) is not started for calls we instrument."""
    sdk_exporter = InMemorySpanExporter()
    sdk_tp = TracerProvider()
    sdk_tp.add_span_processor(SimpleSpanProcessor(sdk_exporter))
    option = {"tracer_provider": sdk_tp} if sdk_tracing else False
    client = anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key="x", open_telemetry=option
    )
    server.script(Reply(content="a"), Reply(content="b c d"))
    client.messages.create(model="claude-x", max_tokens=20, messages=MSG)
    with client.messages.stream(model="claude-x", max_tokens=20, messages=MSG) as s:
        s.until_done()
    assert len(_genai(spans)) == 2
    assert _genai(sdk_exporter) == []


@needs_anthropic_tracing
def test_sdk_span_back_after_uninstrument(server):
    sdk_exporter = InMemorySpanExporter()
    sdk_tp = TracerProvider()
    sdk_tp.add_span_processor(SimpleSpanProcessor(sdk_exporter))
    client = anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key="x", open_telemetry={"tracer_provider": sdk_tp}
    )
    server.script(Reply(content="a"))
    client.messages.create(model="claude-x", max_tokens=20, messages=MSG)
    assert len(_genai(sdk_exporter)) == 1
