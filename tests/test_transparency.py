"""Never break the app: an instrumented call returns and raises exactly what the bare SDK does.

Each generated server reply is served twice, once to the SDK method as it was before wrapping
(``__wrapped__``) and once through our wrapper; results and exceptions must be equal.
``FRICTIONLENS_FUZZ_EXAMPLES`` sets the examples per property (default 120, small for CI;
docs/quality.md's figure comes from ``FRICTIONLENS_FUZZ_EXAMPLES=10000``).
"""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from anthropic.resources.messages import Messages
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.resources.chat.completions.completions import AsyncCompletions, Completions
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import frictionlens
from frictionlens import health
from frictionlens.localserver import LocalLLMServer, Reply
from tests.sdks import anthropic_client

#: the SDK instrumentation tests, run on the newest and the oldest SDK releases we support
pytestmark = pytest.mark.sdk

EXAMPLES = int(os.environ.get("FRICTIONLENS_FUZZ_EXAMPLES", "120"))
FAST = {"retry-after-ms": "1"}
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
replies = st.one_of(
    st.builds(
        Reply,
        content=text,
        finish_reason=st.sampled_from([None, "stop", "length", "content_filter"]),
    ),
    st.builds(Reply, content=st.lists(text, min_size=2, max_size=3)),
    st.builds(
        Reply,
        tool_calls=st.lists(st.tuples(st.sampled_from(["a", "b"]), text), min_size=1, max_size=3),
    ),
    st.builds(Reply, refusal=text.filter(bool)),
    st.builds(
        Reply,
        status=st.sampled_from([400, 401, 404, 409, 422, 500, 503]),
        error=text,
        headers=st.just(FAST),
    ),
    st.builds(Reply, raw_body=st.binary(max_size=200)),
    st.builds(
        Reply,
        raw_body=st.sampled_from(
            [b'{"choices": []}', b'{"choices": null}', b"\xff\xfe{", b"[]", b"{}"]
        ),
    ),
    st.builds(
        Reply,
        raw_body=st.binary(max_size=60).map(lambda b: b'{"content": "' + b + b"\xc3\x28" + b'"}'),
    ),
    st.builds(
        Reply, content=text, truncate_stream_after=st.integers(0, 8), truncate_cleanly=st.booleans()
    ),  # a stream that stops mid-way, with or without a clean end of the HTTP body
)


@pytest.fixture(scope="module")
def server():
    with LocalLLMServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def instrumented():
    frictionlens.instrument(
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(),
        providers=["openai", "anthropic"],
    )
    yield
    frictionlens.uninstrument()


@pytest.fixture(scope="module")
def clients(server):
    """One client per SDK for the whole module: building one (its TLS context) costs more than a call."""
    return (
        openai.OpenAI(
            base_url=server.openai_base_url, api_key="k", max_retries=0
        ),  # retries would consume the other scripted reply
        anthropic_client(base_url=server.anthropic_base_url, api_key="k", max_retries=0),
    )


@pytest.fixture(autouse=True)
def _isolated_env():  # module-scoped instrumentation: skip the per-test uninstall
    yield


def outcome(fn):
    try:
        value = fn()
    except Exception as exc:  # compare type and message, not identity
        return ("raised", type(exc), str(exc))
    return (
        "returned",
        type(value),
        value.model_dump(warnings=False) if hasattr(value, "model_dump") else value,
    )


#: every id the local server makes per request (frictionlens/localserver: the request id
#: header, and the chat, message, response, function-call and tool-use ids of its bodies)
_SERVER_IDS = re.compile(
    r"\b(req_local|chatcmpl-local|msg_local|resp_local|fc_local|toolu_local|call_)[0-9_]+"
)


def _no_ids(value):
    """Ids and timestamps differ per request by design; everything else must be equal."""
    if isinstance(value, dict):
        return {k: _no_ids(v) for k, v in value.items() if k not in ("id", "created")}
    if isinstance(value, list):
        return [_no_ids(v) for v in value]
    if isinstance(value, str):  # an error message may quote the request id
        return _SERVER_IDS.sub(r"\1<id>", value)
    return value


def strip_ids(result):
    """An outcome without what differs per request, returned or raised."""
    kind, typ, value = result
    return kind, typ, _no_ids(value)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(reply=replies, stream=st.booleans(), n=st.sampled_from([None, 2]))
def test_sync_calls_are_transparent(server, clients, instrumented, reply, stream, n):
    client = clients[0]
    kwargs = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if n:
        kwargs["n"] = n

    def call(fn):
        def run():
            out = fn(**kwargs)
            return [c.model_dump() for c in out] if stream else out

        return run

    errors_before = sum(health.internal_errors().values())
    server.script(reply, reply)
    bare = outcome(call(lambda **kw: Completions.create.__wrapped__(client.chat.completions, **kw)))
    wrapped = outcome(call(client.chat.completions.create))
    assert strip_ids(bare) == strip_ids(wrapped)
    assert sum(health.internal_errors().values()) == errors_before


@settings(
    max_examples=max(10, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck)
)
@given(reply=replies, cancel_after=st.integers(0, 3))
def test_async_streams_cancelled_at_any_chunk(server, instrumented, reply, cancel_after):
    client = openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key="k", max_retries=0
    )  # retries would consume the other scripted reply

    async def consume(fn):
        got = []
        try:
            stream = await fn(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
            async for chunk in stream:
                got.append(chunk.model_dump(exclude={"id", "created"}))
                if len(got) > cancel_after:
                    raise asyncio.CancelledError
        except asyncio.CancelledError:
            return ("cancelled", got)
        except Exception as exc:
            return ("raised", type(exc))
        return ("done", got)

    async def both():
        server.script(reply, reply)
        bare = await consume(
            lambda **kw: AsyncCompletions.create.__wrapped__(client.chat.completions, **kw)
        )
        wrapped = await consume(client.chat.completions.create)
        return bare, wrapped

    bare, wrapped = asyncio.run(both())
    assert bare[0] == wrapped[0]
    if bare[0] != "raised":
        assert len(bare[1]) == len(wrapped[1])
    else:
        assert bare[1] is wrapped[1]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(reply=replies, stream=st.booleans())
def test_anthropic_calls_are_transparent(server, clients, instrumented, reply, stream):
    client = clients[1]
    kwargs = {
        "model": "m",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }

    def call(fn):
        def run():
            out = fn(**kwargs)
            return [e.model_dump(warnings=False) for e in out] if stream else out

        return run

    errors_before = sum(health.internal_errors().values())
    server.script(reply, reply)
    bare = outcome(call(lambda **kw: Messages.create.__wrapped__(client.messages, **kw)))
    wrapped = outcome(call(client.messages.create))
    assert strip_ids(bare) == strip_ids(wrapped)
    assert sum(health.internal_errors().values()) == errors_before


@pytest.mark.parametrize("stream", [False, True])
def test_five_megabyte_outputs_round_trip(server, instrumented, stream):
    big = "x" * (5 << 20)
    server.script(Reply(content=big, stream_chunks=20), Reply(content=big, stream_chunks=20))
    messages = [{"role": "user", "content": "hi"}]
    chat = openai.OpenAI(base_url=server.openai_base_url, api_key="k").chat.completions.create(
        model="m", messages=messages, stream=stream
    )
    got = (
        "".join(c.choices[0].delta.content or "" for c in chat if c.choices)
        if stream
        else chat.choices[0].message.content
    )
    assert got == big
    msg = anthropic_client(base_url=server.anthropic_base_url, api_key="k").messages.create(
        model="m", max_tokens=10, messages=messages, stream=stream
    )
    got = (
        "".join(e.delta.text for e in msg if e.type == "content_block_delta")
        if stream
        else msg.content[0].text
    )
    assert got == big


def test_threaded_calls_are_transparent(server, clients, instrumented):
    """Many threads at once, bare and wrapped interleaved: every answer matches its question's."""
    server.reset()  # the default responder answers from the question alone
    client = clients[0]
    errors_before = sum(health.internal_errors().values())

    def both(i: int):
        kwargs = {
            "model": "m",
            "messages": [{"role": "user", "content": f"question number {i}"}],
            "stream": i % 2 == 0,
        }

        def run(fn):
            out = fn(**kwargs)
            return [c.model_dump() for c in out] if kwargs["stream"] else out

        bare = outcome(
            lambda: run(lambda **kw: Completions.create.__wrapped__(client.chat.completions, **kw))
        )
        return strip_ids(bare), strip_ids(outcome(lambda: run(client.chat.completions.create)))

    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(both, range(64)))
    assert all(bare == wrapped and bare[0] == "returned" for bare, wrapped in pairs)
    assert len({repr(bare) for bare, _ in pairs}) == 64  # the answers really differ per question
    assert sum(health.internal_errors().values()) == errors_before


def test_a_span_processor_that_raises_never_reaches_the_app():
    """Whether the worker or (its queue full) the app's thread ends the span."""
    from opentelemetry.sdk.trace import SpanProcessor

    from frictionlens.features.invocation import LLMInvocation
    from frictionlens.instrumentation.telemetry import Telemetry

    class Raising(SpanProcessor):
        def on_end(self, span):
            raise RuntimeError("a processor's own bug")

    tp = TracerProvider()
    tp.add_span_processor(Raising())
    meter = MeterProvider().get_meter("t")
    for defer in (None, lambda work: False):  # no worker; a worker whose queue is full
        telemetry = Telemetry(tp, meter, salt=b"s", defer=defer)
        inv = LLMInvocation(
            operation="chat", provider="openai", request_model="m", outputs=["hello"]
        )
        before = health.internal_errors().get("telemetry", 0)
        telemetry.start(inv)
        telemetry.finish(inv)
        assert inv.ended and health.internal_errors()["telemetry"] == before + 1
