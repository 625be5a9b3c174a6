"""Anthropic ``messages.parse``, the beta resource and the raw-response wrappers: one GenAI span
per call, with the SDK's own tracing on and off (real SDK, real HTTP, local server)."""

from __future__ import annotations

import asyncio
import gc

import anthropic
import pydantic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frictionlens.localserver import Reply, Usage
from tests.sdks import (
    ANTHROPIC_HAS_STRUCTURED_OUTPUT,
    anthropic_client,
    needs_anthropic_structured_output,
)
from tests.test_anthropic import MSG, _genai, _one, server, spans  # noqa: F401 - fixtures

#: the SDK instrumentation tests, run on the newest and the oldest SDK releases we support
pytestmark = pytest.mark.sdk


class City(pydantic.BaseModel):
    city: str


@pytest.fixture(params=[True, False], ids=["sdk-tracing-on", "sdk-tracing-off"])
def sdk_spans(request):
    """The SDK's own tracing on (into its own exporter, which must stay empty of GenAI spans) or off."""
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, ({"tracer_provider": tp} if request.param else False)
    assert _genai(exporter) == []


def _client(server, sdk_spans, cls=anthropic.Anthropic):
    return anthropic_client(
        cls, base_url=server.anthropic_base_url, api_key="x", sdk_tracing=sdk_spans[1]
    )


@needs_anthropic_structured_output
@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
def test_parse_structured_output(server, spans, sdk_spans, beta):
    server.script(Reply(content='{"city": "Paris"}', usage=Usage(9, 6)))
    client = _client(server, sdk_spans)
    resource = client.beta.messages if beta else client.messages
    resp = resource.parse(model="claude-x", max_tokens=50, messages=MSG, output_format=City)
    assert resp.parsed_output == City(city="Paris")
    a = _one(spans)
    assert a["frictionlens.output.format.expected"] == "json_schema"
    assert a["frictionlens.output.format.valid"] is True
    assert a["gen_ai.output.type"] == "json"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (9, 6)


@needs_anthropic_structured_output
def test_parse_schema_violation(server, spans, sdk_spans):
    server.script(Reply(content='{"town": "Paris"}'))
    with pytest.raises(pydantic.ValidationError):  # the SDK's parser rejects it; the span says why
        _client(server, sdk_spans).messages.parse(
            model="claude-x", max_tokens=50, messages=MSG, output_format=City
        )
    a = _one(spans)
    assert a["error.type"] == "ValidationError"


def test_beta_create_and_stream(server, spans, sdk_spans):
    server.script(Reply(content="Paris."), Reply(content="Paris again.", usage=Usage(4, 3)))
    client = _client(server, sdk_spans)
    client.beta.messages.create(model="claude-x", max_tokens=20, messages=MSG)
    with client.beta.messages.stream(model="claude-x", max_tokens=20, messages=MSG) as stream:
        text = "".join(stream.text_stream)
    assert text == "Paris again."
    first, second = sorted(_genai(spans), key=lambda s: s.start_time)
    assert first.attributes["frictionlens.output.chars"] == len("Paris.")
    assert second.attributes["frictionlens.output.chars"] == len(text)
    assert second.attributes["gen_ai.usage.output_tokens"] == 3


def test_with_streaming_response_parse(server, spans, sdk_spans):
    server.script(Reply(content="Paris is the capital.", usage=Usage(10, 5)))
    client = _client(server, sdk_spans)
    with client.messages.with_streaming_response.create(
        model="claude-x", max_tokens=20, messages=MSG
    ) as response:
        assert response.http_response.status_code == 200
        assert _genai(spans) == []  # the body is not read yet: the call is not over
        message = response.parse()
        assert response.parse() is message
    assert message.content[0].text == "Paris is the capital."
    a = _one(spans)
    assert a["frictionlens.output.chars"] == len("Paris is the capital.")
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["frictionlens.output.format.valid"] is True


def test_with_streaming_response_event_stream(server, spans, sdk_spans):
    server.script(Reply(content="Paris, streamed.", usage=Usage(7, 4)))
    client = _client(server, sdk_spans)
    with client.messages.with_streaming_response.create(
        model="claude-x", max_tokens=20, messages=MSG, stream=True
    ) as response:
        text = "".join(e.delta.text for e in response.parse() if e.type == "content_block_delta")
    assert text == "Paris, streamed."
    a = _one(spans)
    assert a["frictionlens.stream.abandoned"] is False
    assert a["frictionlens.output.chars"] == len(text)
    assert a["gen_ai.usage.output_tokens"] == 4


def test_with_streaming_response_bytes_read_by_caller(server, spans, sdk_spans):
    server.script(Reply(content="Paris."))
    client = _client(server, sdk_spans)
    with client.messages.with_streaming_response.create(
        model="claude-x", max_tokens=20, messages=MSG
    ) as response:
        body = b"".join(response.iter_bytes())
    assert b"Paris." in body
    a = _one(spans)
    assert "frictionlens.output.format.valid" not in a  # we never saw the output: nothing judged
    assert a["frictionlens.retry.count"] == 0


def test_with_raw_response(server, spans, sdk_spans):
    server.script(Reply(content="Paris.", usage=Usage(3, 2)), Reply(content="unread"))
    client = _client(server, sdk_spans)
    raw = client.messages.with_raw_response.create(model="claude-x", max_tokens=20, messages=MSG)
    assert raw.parse().content[0].text == "Paris."
    assert _one(spans)["gen_ai.usage.output_tokens"] == 2
    spans.clear()
    dropped = client.messages.with_raw_response.create(
        model="claude-x", max_tokens=20, messages=MSG
    )
    assert _genai(spans) == []
    del dropped
    gc.collect()
    assert "frictionlens.output.format.valid" not in _one(spans)  # ended when dropped unread


def test_async_raw_wrappers(server, spans, sdk_spans):
    async def run():
        client = _client(server, sdk_spans, anthropic.AsyncAnthropic)
        server.script(Reply(content="one."), Reply(content="two, streamed."))
        async with client.messages.with_streaming_response.create(
            model="claude-x", max_tokens=20, messages=MSG
        ) as r:
            first = (await r.parse()).content[0].text
        async with client.messages.with_streaming_response.create(
            model="claude-x", max_tokens=20, messages=MSG, stream=True
        ) as r:
            second = "".join(
                [e.delta.text async for e in await r.parse() if e.type == "content_block_delta"]
            )
        third = None
        if ANTHROPIC_HAS_STRUCTURED_OUTPUT:
            server.script(Reply(content='{"city": "Rome"}'))
            parsed = await client.messages.parse(
                model="claude-x", max_tokens=20, messages=MSG, output_format=City
            )
            third = parsed.parsed_output
        await client.close()
        return first, second, third

    parsed = City(city="Rome") if ANTHROPIC_HAS_STRUCTURED_OUTPUT else None
    assert asyncio.run(run()) == ("one.", "two, streamed.", parsed)
    found = sorted(_genai(spans), key=lambda s: s.start_time)
    chars = [4, 14] + ([len('{"city": "Rome"}')] if ANTHROPIC_HAS_STRUCTURED_OUTPUT else [])
    assert [s.attributes["frictionlens.output.chars"] for s in found] == chars
    assert found[1].attributes["frictionlens.stream.abandoned"] is False
    if ANTHROPIC_HAS_STRUCTURED_OUTPUT:
        assert found[2].attributes["frictionlens.output.format.expected"] == "json_schema"
