"""Never break the app: an instrumented call returns and raises exactly what the bare SDK does.

Each generated server reply is served twice, once to the SDK method as it was before wrapping
(``__wrapped__``) and once through our wrapper; results and exceptions must be equal.
"""

from __future__ import annotations

import asyncio

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import frictionlens
from frictionlens import health
from frictionlens.localserver import LocalLLMServer, Reply
from openai.resources.chat.completions.completions import AsyncCompletions, Completions

FAST = {"retry-after-ms": "1"}
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
replies = st.one_of(
    st.builds(Reply, content=text, finish_reason=st.sampled_from([None, "stop", "length", "content_filter"])),
    st.builds(Reply, content=st.lists(text, min_size=2, max_size=3)),
    st.builds(Reply, tool_calls=st.lists(st.tuples(st.sampled_from(["a", "b"]), text), min_size=1, max_size=3)),
    st.builds(Reply, refusal=text.filter(bool)),
    st.builds(Reply, status=st.sampled_from([400, 401, 404, 409, 422, 500, 503]), error=text, headers=st.just(FAST)),
    st.builds(Reply, raw_body=st.binary(max_size=200)),
    st.builds(Reply, raw_body=st.sampled_from([b'{"choices": []}', b'{"choices": null}', b"\xff\xfe{", b"[]", b"{}"])),
)


@pytest.fixture(scope="module")
def server():
    with LocalLLMServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def instrumented():
    frictionlens.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(), providers=["openai"])
    yield
    frictionlens.uninstrument()


@pytest.fixture(autouse=True)
def _isolated_env():  # module-scoped instrumentation: skip the per-test uninstall
    yield


def outcome(fn):
    try:
        value = fn()
    except Exception as exc:  # compare type and message, not identity
        return ("raised", type(exc), str(exc))
    return ("returned", type(value), value.model_dump() if hasattr(value, "model_dump") else value)


def _no_ids(value):
    """Ids and timestamps differ per request by design; everything else must be equal."""
    if isinstance(value, dict):
        return {k: _no_ids(v) for k, v in value.items() if k not in ("id", "created")}
    if isinstance(value, list):
        return [_no_ids(v) for v in value]
    return value


def strip_ids(result):
    kind, typ, value = result
    return kind, typ, _no_ids(value) if kind == "returned" else value


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(reply=replies, stream=st.booleans(), n=st.sampled_from([None, 2]))
def test_sync_calls_are_transparent(server, instrumented, reply, stream, n):
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)  # retries would consume the other scripted reply
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


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(reply=replies, cancel_after=st.integers(0, 3))
def test_async_streams_cancelled_at_any_chunk(server, instrumented, reply, cancel_after):
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)  # retries would consume the other scripted reply

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
        bare = await consume(lambda **kw: AsyncCompletions.create.__wrapped__(client.chat.completions, **kw))
        wrapped = await consume(client.chat.completions.create)
        return bare, wrapped

    bare, wrapped = asyncio.run(both())
    assert bare[0] == wrapped[0]
    if bare[0] != "raised":
        assert len(bare[1]) == len(wrapped[1])
    else:
        assert bare[1] is wrapped[1]


def test_a_megabyte_output_round_trips(server, instrumented):
    big = "x" * (1 << 20)
    server.script(Reply(content=big))
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k")
    out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == big
