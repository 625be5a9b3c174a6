"""The OpenAI instrumentation, with the real openai SDK over real HTTP to the local server."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frictionlens
from frictionlens import semconv as sc
from frictionlens.localserver import LocalLLMServer, Reply, Usage

#: the SDK instrumentation tests, run on the newest and the oldest SDK releases we support
pytestmark = pytest.mark.sdk

FAST_RETRY = {"retry-after-ms": "1"}
MSGS = [
    {"role": "system", "content": "Answer in JSON."},
    {"role": "user", "content": "Give me a user record"},
]


@pytest.fixture
def server():
    with LocalLLMServer() as srv:
        yield srv


@pytest.fixture
def spans():
    """instrument() on an SDK provider of the test's own; yields a function listing LLM spans."""
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    frictionlens.instrument(
        tracer_provider=tp,
        meter_provider=MeterProvider(metric_readers=[reader]),
        providers=["openai"],
    )

    def llm_spans():
        tp.force_flush()  # the pipeline runs its stages on a worker thread
        return [
            s
            for s in exporter.get_finished_spans()
            if (s.attributes or {}).get(sc.GEN_AI_PROVIDER_NAME)
        ]

    llm_spans.reader = reader
    yield llm_spans
    frictionlens.uninstrument()


def client(server, **kw):
    return openai.OpenAI(base_url=server.openai_base_url, api_key="test", **kw)


def aclient(server, **kw):
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", **kw)


def test_chat_call_carries_every_per_call_attribute(server, spans):
    server.script(
        Reply(
            content='Sure! Here is the JSON:\n{"name": "Ada"}',
            model="gpt-test-2024",
            system_fingerprint="fp_1",
            usage=Usage(11, 7),
        )
    )
    with frictionlens.session("conv-42", user_id="u1"):
        out = client(server).chat.completions.create(
            model="gpt-test",
            messages=MSGS,
            response_format={"type": "json_object"},
            temperature=0.2,
            max_tokens=50,
        )
    assert out.choices[0].message.content.startswith("Sure!")
    (span,) = spans()
    a = span.attributes
    assert span.name == "chat gpt-test"
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat" and a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert (
        a[sc.GEN_AI_REQUEST_MODEL] == "gpt-test" and a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-test-2024"
    )
    assert a[sc.GEN_AI_RESPONSE_ID] == out.id and a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11 and a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2 and a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert a[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] == "fp_1"
    assert a[sc.SERVER_ADDRESS] == "127.0.0.1" and a[sc.GEN_AI_CONVERSATION_ID] == "conv-42"
    assert a[sc.OUTPUT_CHARS] == len(out.choices[0].message.content)
    assert a[sc.OUTPUT_FORMAT_EXPECTED] == "json" and a[sc.OUTPUT_FORMAT_VALID] is False
    assert a[sc.OUTPUT_FORMAT_ERROR] == "preamble" and a[sc.OUTPUT_PREAMBLE] is True
    assert (
        a[sc.OUTPUT_REFUSAL] is False and a[sc.OUTPUT_TRUNCATED] is False and a[sc.RETRY_COUNT] == 0
    )
    assert sc.GEN_AI_INPUT_MESSAGES not in a  # no content without opt-in
    assert sc.FRICTION_SCORE in a or sc.CONVERSATION_ID in a  # the friction stage ran on it


def test_json_schema_and_truncation(server, spans):
    schema = {
        "type": "object",
        "required": ["name", "age"],
        "properties": {"age": {"type": "integer"}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "user", "schema": schema}}
    server.script(
        Reply(content='{"name": "Ada"}'),
        Reply(content='{"name": "Ada", "age": 36}'),
        Reply(content="The answer is", finish_reason="length"),
    )
    c = client(server)
    c.chat.completions.create(model="m", messages=MSGS, response_format=fmt)
    c.chat.completions.create(model="m", messages=MSGS, response_format=fmt)
    c.chat.completions.create(model="m", messages=MSGS)
    bad, good, cut = spans()
    assert (
        bad.attributes[sc.OUTPUT_FORMAT_ERROR] == "schema"
        and bad.attributes[sc.OUTPUT_FORMAT_EXPECTED] == "json_schema"
    )
    assert good.attributes[sc.OUTPUT_FORMAT_VALID] is True
    assert cut.attributes[sc.OUTPUT_TRUNCATED] is True and cut.attributes[
        sc.GEN_AI_RESPONSE_FINISH_REASONS
    ] == ("length",)


def test_refusal_from_the_sdk_field_and_from_phrasing(server, spans):
    server.script(
        Reply(refusal="I can't help with that."),
        Reply(content="I'm sorry, but I can't help with that request."),
    )
    c = client(server)
    c.chat.completions.create(model="m", messages=MSGS)
    c.chat.completions.create(model="m", messages=MSGS)
    assert [s.attributes[sc.OUTPUT_REFUSAL] for s in spans()] == [True, True]


def test_tool_calls_count_as_output_and_must_parse(server, spans):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    server.script(
        Reply(tool_calls=[("lookup", '{"q": "x"}')]), Reply(tool_calls=[("lookup", '{"q": ')])
    )
    c = client(server)
    c.chat.completions.create(model="m", messages=MSGS, tools=tools)
    c.chat.completions.create(model="m", messages=MSGS, tools=tools)
    ok, broken = spans()
    assert (
        ok.attributes[sc.OUTPUT_FORMAT_EXPECTED] == "tool_call"
        and ok.attributes[sc.OUTPUT_FORMAT_VALID] is True
    )
    assert ok.attributes[sc.OUTPUT_CHARS] == len('{"q": "x"}')
    assert broken.attributes[sc.OUTPUT_FORMAT_ERROR] == "json_decode"


def test_retry_after_429_is_counted_once(server, spans):
    server.script(Reply(status=429, error="slow down", headers=FAST_RETRY), Reply(content="fine"))
    client(server).chat.completions.create(model="m", messages=MSGS)
    (span,) = spans()
    assert span.attributes[sc.RETRY_COUNT] == 1 and sc.ERROR_TYPE not in span.attributes
    assert server.request_count == 2


def test_errors_are_raised_unchanged_and_recorded(server, spans):
    server.script(*[Reply(status=500, error="boom", headers=FAST_RETRY)] * 3)
    with pytest.raises(openai.InternalServerError) as info:
        client(server).chat.completions.create(model="m", messages=MSGS)
    assert info.value.status_code == 500
    (span,) = spans()
    assert (
        span.attributes[sc.ERROR_TYPE] == "InternalServerError"
        and span.attributes[sc.RETRY_COUNT] == 2
    )
    assert span.status.status_code.name == "ERROR"


def test_stream_to_the_end(server, spans):
    server.script(Reply(content="one two three four", usage=Usage(3, 4)))
    stream = client(server).chat.completions.create(
        model="m", messages=MSGS, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "one two three four"
    (span,) = spans()
    a = span.attributes
    assert (
        a[sc.STREAM_ABANDONED] is False
        and a[sc.OUTPUT_CHARS] == len(text)
        and a[sc.STREAM_CHUNKS] >= 4
    )
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 4 and a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert a[sc.GEN_AI_REQUEST_STREAM] is True


@pytest.mark.parametrize("how", ["close", "with", "helper"])
def test_stream_closed_early_is_abandoned_and_ends_once(server, spans, how):
    server.script(Reply(content=" ".join(["word"] * 40)))
    c = client(server)
    if how == "close":
        stream = c.chat.completions.create(model="m", messages=MSGS, stream=True)
        next(iter(stream))
        stream.close()
        stream.close()
    elif how == "with":
        with c.chat.completions.create(model="m", messages=MSGS, stream=True) as stream:
            next(iter(stream))
    else:
        with c.chat.completions.stream(model="m", messages=MSGS) as stream:
            for _ in stream:
                break
    (span,) = spans()
    assert span.attributes[sc.STREAM_ABANDONED] is True


def test_stream_helper_consumed_gives_one_span(server, spans):
    with client(server).chat.completions.stream(model="m", messages=MSGS) as stream:
        final = stream.get_final_completion()
    (span,) = spans()
    assert span.attributes[sc.STREAM_ABANDONED] is False
    assert span.attributes[sc.OUTPUT_CHARS] == len(final.choices[0].message.content)


def test_responses_api_plain_and_streamed(server, spans):
    c = client(server)
    r = c.responses.create(model="m", input="hello there", instructions="be brief")
    events = list(c.responses.create(model="m", input="hello there", stream=True))
    with c.responses.stream(model="m", input="hi") as s:
        s.get_final_response()
    plain, streamed, helper = spans()
    assert (
        plain.attributes[sc.OUTPUT_CHARS] == len(r.output_text)
        and plain.attributes[sc.GEN_AI_RESPONSE_ID] == r.id
    )
    assert (
        streamed.attributes[sc.STREAM_ABANDONED] is False
        and streamed.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    )
    assert events and helper.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_legacy_completions_sync_async_and_streamed(server, spans):
    server.script(
        Reply(content="This is a", finish_reason="length", usage=Usage(5, 3)),
        Reply(content="streamed text", stream_chunks=3),
        Reply(content=["one", "two"]),
        Reply(content="async streamed", stream_chunks=2),
    )
    c = client(server)
    done = c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this", max_tokens=3)
    assert done.choices[0].text == "This is a"
    streamed = "".join(
        ch.choices[0].text
        for ch in c.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", stream=True)
    )

    async def run():
        ac = aclient(server)
        both = await ac.completions.create(model="m", prompt=["a", "b"])
        chunks = [
            ch async for ch in await ac.completions.create(model="m", prompt="y", stream=True)
        ]
        return both, "".join(ch.choices[0].text for ch in chunks)

    both, astreamed = asyncio.run(run())
    found = sorted(spans(), key=lambda s: s.start_time)
    assert [s.name for s in found] == ["text_completion gpt-3.5-turbo-instruct"] * 2 + [
        "text_completion m"
    ] * 2
    attrs = [s.attributes for s in found]
    assert {a[sc.GEN_AI_OPERATION_NAME] for a in attrs} == {"text_completion"}
    assert (attrs[0][sc.GEN_AI_USAGE_INPUT_TOKENS], attrs[0][sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (
        5,
        3,
    )
    assert attrs[0][sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)
    assert attrs[0][sc.OUTPUT_TRUNCATED] is True
    assert attrs[1][sc.OUTPUT_CHARS] == len(streamed) and attrs[1][sc.STREAM_ABANDONED] is False
    texts = [ch.text for ch in both.choices]
    assert attrs[2][sc.OUTPUT_CHARS] == len("\n".join(texts))
    assert attrs[2][sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert attrs[3][sc.OUTPUT_CHARS] == len(astreamed) == len("async streamed")
    assert all(sc.CONVERSATION_ID in a for a in attrs)  # the prompt threads a conversation


def test_embeddings(server, spans):
    out = client(server).embeddings.create(model="emb", input=["a", "b"])
    (span,) = spans()
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings" and len(out.data) == 2
    assert sc.OUTPUT_CHARS not in span.attributes


def test_async_calls_streams_and_cancellation(server, spans):
    async def main():
        c = aclient(server)
        await c.chat.completions.create(model="m", messages=MSGS)
        stream = await c.chat.completions.create(model="m", messages=MSGS, stream=True)
        async for _ in stream:
            pass
        server.script(Reply(content=" ".join(["w"] * 30), chunk_delay_s=0.02))
        stream = await c.chat.completions.create(model="m", messages=MSGS, stream=True)

        async def consume():
            async for _ in stream:
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stream.close()

    asyncio.run(main())
    plain, full, cancelled = spans()
    assert sc.STREAM_ABANDONED not in plain.attributes
    assert full.attributes[sc.STREAM_ABANDONED] is False
    assert (
        cancelled.attributes[sc.STREAM_ABANDONED] is True
        and sc.ERROR_TYPE not in cancelled.attributes
    )


def test_threads_get_one_span_per_call(server, spans):
    from concurrent.futures import ThreadPoolExecutor

    c = client(server)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"q{i}"}]
                ),
                range(40),
            )
        )
    assert len(spans()) == 40


def test_metrics_are_recorded(server, spans):
    server.script(Reply(status=429, error="x", headers=FAST_RETRY), Reply(content="not json"))
    client(server).chat.completions.create(
        model="m", messages=MSGS, response_format={"type": "json_object"}
    )
    spans()  # the pipeline's worker records a call's metrics as it ends the span
    data = spans.reader.get_metrics_data()
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {
        sc.METRIC_GEN_AI_OPERATION_DURATION,
        sc.METRIC_GEN_AI_TOKEN_USAGE,
        sc.METRIC_OUTPUT_LENGTH,
        sc.METRIC_FORMAT_FAILURES,
        sc.METRIC_RETRIES,
    } <= names


def test_per_stream_metrics_name_the_stream_the_span_names(server, spans):
    """Output length and format failures are counted per stream; the stream on those metric
    points is the one drift reports on the span, route inferred from the system prompt."""
    server.script(Reply(content="not json"))
    client(server).chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": "Extract the order."}, *MSGS],
        response_format={"type": "json_object"},
    )
    (span,) = spans()
    stream = span.attributes[sc.DRIFT_STREAM]
    assert "/sys-" in stream
    data = spans.reader.get_metrics_data()
    points = {
        m.name: [p.attributes.get(sc.METRIC_ATTR_STREAM) for p in m.data.data_points]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert points[sc.METRIC_OUTPUT_LENGTH] == [stream]
    assert points[sc.METRIC_FORMAT_FAILURES] == [stream]


def test_content_capture_is_opt_in_and_truncated(server, monkeypatch):
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    frictionlens.instrument(
        tracer_provider=tp,
        meter_provider=MeterProvider(),
        capture_content=True,
        content_max_chars=5,
    )
    server.script(Reply(content="abcdefghij"))
    client(server).chat.completions.create(model="m", messages=MSGS)
    frictionlens.uninstrument()
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    out = json.loads(span.attributes[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out[0]["parts"][0]["content"] == "abcde"
    assert json.loads(span.attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS])[0]["content"] == "Answe"


def test_uninstrument_restores_the_sdk(server):
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    frictionlens.instrument(tracer_provider=tp, meter_provider=MeterProvider())
    frictionlens.instrument(tracer_provider=tp, meter_provider=MeterProvider())  # idempotent
    frictionlens.uninstrument()
    client(server).chat.completions.create(model="m", messages=MSGS)
    assert exporter.get_finished_spans() == ()


def test_raw_response_wrappers_one_span_each(server, spans):
    """``with_raw_response`` and ``with_streaming_response``: the span ends when the body is parsed."""
    server.script(
        Reply(content="raw.", usage=Usage(3, 1)), Reply(content="streamed raw.", usage=Usage(4, 2))
    )
    c = client(server)
    raw = c.chat.completions.with_raw_response.create(model="gpt-test", messages=MSGS)
    assert raw.parse().choices[0].message.content == "raw."
    with c.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=MSGS, stream=True
    ) as response:
        text = "".join(ch.choices[0].delta.content or "" for ch in response.parse() if ch.choices)
    assert text == "streamed raw."
    first, second = sorted(spans(), key=lambda s: s.start_time)
    assert (
        first.attributes[sc.OUTPUT_CHARS] == len("raw.")
        and first.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    )
    assert (
        second.attributes[sc.OUTPUT_CHARS] == len(text)
        and second.attributes[sc.STREAM_ABANDONED] is False
    )


def test_the_call_returns_before_its_span_is_ended_and_the_span_keeps_its_own_end_time(server):
    """The outcome, metrics and span.end() wait for the pipeline (its worker, or a flush), not
    for the app's call."""
    import threading
    import time

    from opentelemetry.sdk.trace import SpanProcessor

    class Threads(SpanProcessor):
        def __init__(self):
            self.ended_on: list[str] = []

        def on_end(self, span):
            self.ended_on.append((span.name, threading.current_thread().name))

    exporter, threads = InMemorySpanExporter(), Threads()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tp.add_span_processor(threads)
    reader = InMemoryMetricReader()
    frictionlens.instrument(
        tracer_provider=tp,
        meter_provider=MeterProvider(metric_readers=[reader]),
        providers=["openai"],
    )
    try:
        before = time.time_ns()
        client(server).chat.completions.create(model="gpt-test", messages=MSGS)
        after = time.time_ns()
        ended_during_the_call = list(threads.ended_on)
        tp.force_flush()
    finally:
        frictionlens.uninstrument()
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-test"]
    assert before <= span.start_time < span.end_time <= after
    assert ended_during_the_call == []
    assert [name for name, _ in threads.ended_on].count(span.name) == 1
    assert span.attributes[sc.OUTPUT_CHARS] > 0
    names = {
        m.name
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert sc.METRIC_GEN_AI_OPERATION_DURATION in names
