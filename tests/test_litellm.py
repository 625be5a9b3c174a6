"""LiteLLM: one GenAI span per completion, whichever route it takes (real litellm, real openai SDK,
real HTTP to the local server)."""

from __future__ import annotations

import asyncio
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")


import frictionlens  # noqa: E402
from frictionlens.localserver import Reply, Usage  # noqa: E402
from tests.test_anthropic import MSG, server  # noqa: E402,F401 - fixture
from tests.test_providers import FlushingExporter, _install  # noqa: E402

#: the SDK instrumentation tests, run on the newest and the oldest SDK releases we support
pytestmark = pytest.mark.sdk


@pytest.fixture
def spans(server):
    server.reset()
    exporter = FlushingExporter()
    _install(exporter)
    yield lambda: [
        s for s in exporter.get_finished_spans() if "gen_ai.operation.name" in (s.attributes or {})
    ]
    frictionlens.uninstrument()


def _openai_route(server, **kw):
    return dict(
        model="openai/gpt-test", api_base=server.openai_base_url, api_key="x", messages=MSG, **kw
    )


def test_completion_one_span_over_the_openai_sdk(server, spans):
    server.script(Reply(content="Paris.", usage=Usage(8, 2)))
    resp = litellm.completion(**_openai_route(server, temperature=0.1))
    assert resp.choices[0].message.content == "Paris."
    (span,) = spans()  # the openai SDK call inside is not a second span
    a = span.attributes
    assert (a["gen_ai.provider.name"], a["gen_ai.request.model"]) == ("openai", "gpt-test")
    assert a["server.address"] == "127.0.0.1"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (8, 2)
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["frictionlens.output.chars"] == len("Paris.")
    assert a["gen_ai.request.temperature"] == 0.1


def test_completion_stream(server, spans):
    server.script(Reply(content="Paris, streamed."))
    stream = litellm.completion(**_openai_route(server, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "Paris, streamed."
    (span,) = spans()
    assert span.attributes["frictionlens.output.chars"] == len(text)
    assert span.attributes["frictionlens.stream.abandoned"] is False


def test_acompletion_and_stream(server, spans):
    async def run():
        server.script(Reply(content="one."), Reply(content="two, streamed."))
        first = await litellm.acompletion(**_openai_route(server))
        stream = await litellm.acompletion(**_openai_route(server, stream=True))
        second = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        return first.choices[0].message.content, second

    assert asyncio.run(run()) == ("one.", "two, streamed.")
    found = sorted(spans(), key=lambda s: s.start_time)
    assert [s.attributes["frictionlens.output.chars"] for s in found] == [4, 14]


def test_anthropic_route(server, spans):
    """LiteLLM's own HTTP client for Anthropic: still one span, named for the provider."""
    server.script(Reply(content="Bonjour.", usage=Usage(5, 3)))
    resp = litellm.completion(
        model="anthropic/claude-x",
        api_base=server.anthropic_base_url,
        api_key="x",
        messages=MSG,
        max_tokens=20,
    )
    assert resp.choices[0].message.content == "Bonjour."
    (span,) = spans()
    a = span.attributes
    assert (a["gen_ai.provider.name"], a["gen_ai.request.model"]) == ("anthropic", "claude-x")
    assert a["gen_ai.usage.output_tokens"] == 3


def test_openai_sdk_call_inside_litellm_is_not_a_second_span(server, spans, monkeypatch):
    """A route that calls ``chat.completions.create`` itself (older LiteLLM releases did, a custom
    provider may): the inner call is covered by the LiteLLM span, not a second one."""
    import openai
    from litellm.llms.custom_llm import CustomLLM

    class ViaOpenAI(CustomLLM):
        def completion(self, *args, **kwargs):
            inner = openai.OpenAI(
                base_url=server.openai_base_url, api_key="x"
            ).chat.completions.create(model="gpt-test", messages=kwargs["messages"])
            return litellm.ModelResponse(**inner.model_dump())

    monkeypatch.setattr(
        litellm, "custom_provider_map", [{"provider": "viaopenai", "custom_handler": ViaOpenAI()}]
    )
    litellm.utils.custom_llm_setup()
    server.script(Reply(content="Paris, nested.", usage=Usage(6, 3)))
    resp = litellm.completion(model="viaopenai/gpt-test", messages=MSG)
    assert resp.choices[0].message.content == "Paris, nested."
    assert len(server.requests) == 1  # the inner SDK call really went over HTTP
    (span,) = spans()
    assert span.attributes["frictionlens.output.chars"] == len("Paris, nested.")


def test_text_completion_one_span_each_way(server, spans):
    """``text_completion`` and ``atext_completion``, plain and streamed (the streamed ones send
    their request through the openai SDK when first read: still one span each)."""
    server.script(
        Reply(content="Paris.", usage=Usage(4, 2)),
        Reply(content="Paris, streamed.", stream_chunks=3),
        Reply(content="Lyon."),
        Reply(content="Lyon, streamed.", stream_chunks=2),
    )
    kw = dict(model="openai/gpt-test", api_base=server.openai_base_url, api_key="x")
    plain = litellm.text_completion("Capital of France?", **kw)  # the prompt by position
    streamed = "".join(
        c.choices[0].text or "" for c in litellm.text_completion(prompt="x", stream=True, **kw)
    )

    async def run():
        first = await litellm.atext_completion(prompt="y", **kw)
        stream = await litellm.atext_completion(prompt="z", stream=True, **kw)
        return first, "".join([c.choices[0].text or "" async for c in stream])

    first, astreamed = asyncio.run(run())
    assert [r.path for r in server.requests] == ["/v1/completions"] * 4
    found = sorted(spans(), key=lambda s: s.start_time)
    assert len(found) == 4
    attrs = [s.attributes for s in found]
    assert {a["gen_ai.operation.name"] for a in attrs} == {"text_completion"}
    assert {a["gen_ai.request.model"] for a in attrs} == {"gpt-test"}
    assert (attrs[0]["gen_ai.usage.input_tokens"], attrs[0]["gen_ai.usage.output_tokens"]) == (4, 2)
    outputs = [plain.choices[0].text, streamed, first.choices[0].text, astreamed]
    assert outputs == ["Paris.", "Paris, streamed.", "Lyon.", "Lyon, streamed."]
    assert [a["frictionlens.output.chars"] for a in attrs] == [len(o) for o in outputs]
    assert [a.get("frictionlens.stream.abandoned") for a in attrs] == [None, False, None, False]
    assert all("frictionlens.conversation.id" in a for a in attrs)  # prompts read, by position too
