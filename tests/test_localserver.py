"""The local server against the real openai and anthropic SDKs over real HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import socket

import anthropic
import httpx2
import openai
import pydantic
import pytest

from frictionlens.localserver import (
    LocalLLMServer,
    ReceivedRequest,
    Reply,
    Usage,
    answer_text,
    default_responder,
    embedding_vector,
)

FAST_RETRY = {"retry-after-ms": "1"}
QUESTION = "What is the tallest mountain in Europe?"
MESSAGES = [{"role": "user", "content": QUESTION}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}


@pytest.fixture(scope="module")
def running() -> LocalLLMServer:
    with LocalLLMServer() as server:
        yield server


@pytest.fixture
def server(running: LocalLLMServer) -> LocalLLMServer:
    running.reset()
    return running


@pytest.fixture
def oai(server: LocalLLMServer) -> openai.OpenAI:
    with openai.OpenAI(base_url=server.openai_base_url, api_key="local") as client:
        yield client


@pytest.fixture
def claude(server: LocalLLMServer) -> anthropic.Anthropic:
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="local") as client:
        yield client


def _async_openai(server: LocalLLMServer, **kwargs: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="local", **kwargs)


# --- OpenAI Chat Completions --------------------------------------------------------------


def test_chat_answer_usage_and_recorded_request(server: LocalLLMServer, oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="gpt-test", messages=MESSAGES, temperature=0.2)
    assert completion.choices[0].message.content == answer_text(QUESTION)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.object == "chat.completion" and completion.id and completion.created > 0
    assert completion.model == "gpt-test" and completion.system_fingerprint == "fp_local"
    usage = completion.usage
    assert usage.completion_tokens == math.ceil(len(answer_text(QUESTION)) / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    (request,) = server.requests
    assert request.path == "/v1/chat/completions" and request.method == "POST"
    assert request.json["messages"] == MESSAGES and request.json["temperature"] == 0.2
    assert request.headers["authorization"] == "Bearer local"
    assert request.provider == "openai" and not request.stream and request.retry_count == 0


def test_chat_stream_with_and_without_usage(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == answer_text(QUESTION)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1

    chunks = list(
        oai.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_async_stream_and_call(server: LocalLLMServer) -> None:
    async def run(server: LocalLLMServer) -> tuple[str, str]:
        async with _async_openai(server) as client:
            completion = await client.chat.completions.create(model="m", messages=MESSAGES)
            stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            return completion.choices[0].message.content, text

    assert asyncio.run(run(server)) == (answer_text(QUESTION), answer_text(QUESTION))


def test_n_choices_stream_and_not(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="m", messages=MESSAGES, n=2)
    texts = [c.message.content for c in completion.choices]
    assert [c.index for c in completion.choices] == [0, 1] and len(set(texts)) == 2
    chunks = list(oai.chat.completions.create(model="m", messages=MESSAGES, n=2, stream=True))
    streamed = [
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].index == i)
        for i in (0, 1)
    ]
    assert streamed == texts


def test_tool_call_then_answer_after_tool_result(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert (
        call.function.name == "get_weather"
        and isinstance(arguments["city"], str)
        and arguments["days"] >= 1
    )

    history = MESSAGES + [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = oai.chat.completions.create(model="m", messages=history, tools=[WEATHER_TOOL])
    assert (
        second.choices[0].finish_reason == "stop" and second.choices[0].message.tool_calls is None
    )
    assert (
        oai.chat.completions.create(
            model="m", messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="none"
        )
        .choices[0]
        .message.content
    )


def test_tool_call_streamed_as_deltas(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(model="m", messages=MESSAGES, tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls"
    assert set(json.loads(call.function.arguments)) == {"city", "days"}
    chunks = list(
        oai.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True)
    )
    fragments = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in chunks
        if c.choices[0].delta.tool_calls
    ]
    assert len(fragments) > 2 and "".join(fragments) == call.function.arguments


class Address(pydantic.BaseModel):
    city: str
    zip_code: str | None


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]
    role: str = pydantic.Field(json_schema_extra={"enum": ["admin", "user"]})
    address: Address


def test_json_object_and_json_schema_answers_parse(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(completion.choices[0].message.content), dict)

    parsed = (
        oai.chat.completions.parse(model="m", messages=MESSAGES, response_format=Person)
        .choices[0]
        .message.parsed
    )
    assert (
        isinstance(parsed, Person)
        and parsed.role == "admin"
        and isinstance(parsed.address, Address)
    )


def test_scripted_replies_fifo_then_responder(server: LocalLLMServer, oai: openai.OpenAI) -> None:
    server.script(
        Reply(content="first", model="other-model", system_fingerprint="fp_new"),
        Reply(refusal="I can't help with that."),
        Reply(content="cut", finish_reason="length", usage=Usage(11, 3)),
    )
    assert server.pending == 3
    first, second, third = (
        oai.chat.completions.create(model="m", messages=MESSAGES) for _ in range(3)
    )
    assert (first.choices[0].message.content, first.model, first.system_fingerprint) == (
        "first",
        "other-model",
        "fp_new",
    )
    assert (
        second.choices[0].message.refusal == "I can't help with that."
        and second.choices[0].message.content is None
    )
    assert third.choices[0].finish_reason == "length" and (
        third.usage.prompt_tokens,
        third.usage.completion_tokens,
    ) == (11, 3)
    server.responder = lambda request: Reply(content=f"seen {request.index}")
    assert (
        oai.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        == "seen 3"
    )
    assert server.pending == 0 and server.request_count == 4


def test_default_responder_stops_at_max_tokens(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=2)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == answer_text(QUESTION)[:8]


def test_keep_alive_reuses_one_connection(server: LocalLLMServer, oai: openai.OpenAI) -> None:
    for _ in range(4):
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert len({r.client_port for r in server.requests}) == 1


# --- OpenAI Responses and Embeddings ------------------------------------------------------


def test_responses_text_and_function_call(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="m", input=QUESTION, instructions="Be brief.")
    assert response.output_text == answer_text(QUESTION) and response.status == "completed"
    assert response.usage.output_tokens > 0 and response.object == "response"

    tool = {"type": "function", **WEATHER_TOOL["function"]}
    called = oai.responses.create(model="m", input=QUESTION, tools=[tool])
    (call,) = called.output
    assert call.type == "function_call" and set(json.loads(call.arguments)) == {"city", "days"}
    follow_up = [
        {"role": "user", "content": QUESTION},
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        },
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    assert (
        "tool result" in oai.responses.create(model="m", input=follow_up, tools=[tool]).output_text
    )


def test_responses_stream_events_and_final_response(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="m", input=QUESTION, stream=True))
    kinds = [e.type for e in events]
    assert (
        kinds[:2] == ["response.created", "response.in_progress"]
        and kinds[-1] == "response.completed"
    )
    assert "".join(
        e.delta for e in events if e.type == "response.output_text.delta"
    ) == answer_text(QUESTION)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.usage.total_tokens > 0

    tool = {"type": "function", **WEATHER_TOOL["function"]}
    with oai.responses.stream(model="m", input=QUESTION, tools=[tool]) as stream:
        final = stream.get_final_response()
    assert (
        final.output[0].type == "function_call"
        and json.loads(final.output[0].arguments)["days"] >= 1
    )
    with oai.responses.stream(model="m", input=QUESTION, max_output_tokens=3) as stream:
        kinds = [e.type for e in stream]
    assert kinds[-1] == "response.incomplete"


def test_embeddings_are_deterministic_unit_vectors(
    server: LocalLLMServer, oai: openai.OpenAI
) -> None:
    texts = ["the cat sat on the mat", "the cat sat on a mat", "quarterly revenue grew"]
    default = oai.embeddings.create(
        model="emb", input=texts
    )  # the SDK asks for base64 and decodes it
    assert server.requests[-1].json["encoding_format"] == "base64"
    floats = oai.embeddings.create(model="emb", input=texts, encoding_format="float", dimensions=64)
    for a, b, text in zip(default.data, floats.data, texts):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
        assert a.embedding == pytest.approx(embedding_vector(text, 64), abs=1e-6)
        assert math.isclose(sum(v * v for v in b.embedding), 1.0, rel_tol=1e-6)
    cat, cat2, revenue = (d.embedding for d in floats.data)
    cosine = lambda u, v: sum(x * y for x, y in zip(u, v))  # noqa: E731
    assert cosine(cat, cat2) > cosine(cat, revenue)
    assert len(oai.embeddings.create(model="emb", input="x", dimensions=8).data[0].embedding) == 8
    assert default.usage.prompt_tokens > 0


# --- Anthropic Messages -------------------------------------------------------------------


def test_anthropic_message_and_stream(server: LocalLLMServer, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-test", max_tokens=200, messages=MESSAGES, system="Be brief."
    )
    assert message.content[0].text == answer_text(QUESTION) and message.stop_reason == "end_turn"
    assert message.model == "claude-test" and message.usage.output_tokens > 0
    assert (
        server.requests[-1].provider == "anthropic"
        and "anthropic-version" in server.requests[-1].headers
    )

    with claude.messages.stream(model="claude-test", max_tokens=200, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == answer_text(QUESTION)
    assert (
        final.stop_reason == "end_turn" and final.usage.output_tokens == message.usage.output_tokens
    )
    kinds = [
        e.type
        for e in claude.messages.create(model="m", max_tokens=200, messages=MESSAGES, stream=True)
    ]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]


def test_anthropic_tool_use_stream_and_not(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="m", max_tokens=200, messages=MESSAGES, tools=[ANTHROPIC_TOOL]
    )
    (block,) = message.content
    assert (
        message.stop_reason == "tool_use"
        and block.type == "tool_use"
        and set(block.input) == {"city", "days"}
    )
    with claude.messages.stream(
        model="m", max_tokens=200, messages=MESSAGES, tools=[ANTHROPIC_TOOL]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == block.input

    history = MESSAGES + [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}],
        },
    ]
    answer = claude.messages.create(
        model="m", max_tokens=200, messages=history, tools=[ANTHROPIC_TOOL]
    )
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


def test_anthropic_max_tokens_refusal_and_cache_usage(
    server: LocalLLMServer, claude: anthropic.Anthropic
) -> None:
    truncated = claude.messages.create(model="m", max_tokens=2, messages=MESSAGES)
    assert (
        truncated.stop_reason == "max_tokens"
        and truncated.content[0].text == answer_text(QUESTION)[:8]
    )

    server.script(
        Reply(refusal="I can't help with that."),
        Reply(
            content="cached",
            usage=Usage(5, 2, cache_creation_input_tokens=100, cache_read_input_tokens=900),
        ),
        Reply(content="ok", finish_reason="length"),
    )
    refused = claude.messages.create(model="m", max_tokens=50, messages=MESSAGES)
    assert refused.stop_reason == "refusal" and refused.stop_details.type == "refusal"
    with claude.messages.stream(model="m", max_tokens=50, messages=MESSAGES) as stream:
        usage = stream.get_final_message().usage
    assert (
        usage.input_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    ) == (5, 100, 900)
    assert (
        claude.messages.create(model="m", max_tokens=50, messages=MESSAGES).stop_reason
        == "max_tokens"
    )


def test_anthropic_async(server: LocalLLMServer) -> None:
    async def run() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key="local"
        ) as client:
            message = await client.messages.create(model="m", max_tokens=100, messages=MESSAGES)
            async with client.messages.stream(
                model="m", max_tokens=100, messages=MESSAGES
            ) as stream:
                final = await stream.get_final_message()
            return message.content[0].text, final.content[0].text

    assert asyncio.run(run()) == (answer_text(QUESTION), answer_text(QUESTION))


# --- errors, retries, broken bodies and streams -------------------------------------------


def test_429_then_success_is_retried_once(
    server: LocalLLMServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    server.script(Reply(status=429, headers=FAST_RETRY), Reply(content="after retry"))
    assert (
        oai.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        == "after retry"
    )
    assert [r.retry_count for r in server.requests] == [0, 1]

    server.script(Reply(status=429, headers=FAST_RETRY), Reply(content="after retry"))
    assert (
        claude.messages.create(model="m", max_tokens=10, messages=MESSAGES).content[0].text
        == "after retry"
    )
    assert [r.retry_count for r in server.requests[2:]] == [0, 1]


def test_500_exhausts_retries(
    server: LocalLLMServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    server.script(*[Reply(status=500, headers=FAST_RETRY, error="boom")] * 3)
    with pytest.raises(openai.InternalServerError) as raised:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert raised.value.status_code == 500 and raised.value.body["message"] == "boom"
    assert server.request_count == 3

    server.script(*[Reply(status=529, headers=FAST_RETRY)] * 3)
    with pytest.raises(anthropic.OverloadedError) as raised:
        claude.messages.create(model="m", max_tokens=10, messages=MESSAGES)
    assert raised.value.body["error"]["type"] == "overloaded_error"
    assert server.request_count == 6


def test_error_body_and_unknown_path(server: LocalLLMServer, oai: openai.OpenAI) -> None:
    server.script(
        Reply(
            status=400,
            error={"error": {"message": "bad", "type": "x", "param": "model", "code": "c"}},
        )
    )
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert raised.value.param == "model" and raised.value.code == "c"
    with pytest.raises(openai.NotFoundError):
        oai.models.list()


@pytest.mark.parametrize(
    "body", [b'{"id": "chatcmpl-1", ', b"\xff\xfe{}"], ids=["malformed", "non-utf8"]
)
def test_undecodable_body_raises_what_the_sdk_raises(
    server: LocalLLMServer, oai: openai.OpenAI, claude: anthropic.Anthropic, body: bytes
) -> None:
    server.script(Reply(raw_body=body), Reply(raw_body=body))
    with pytest.raises(json.JSONDecodeError):
        oai.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(json.JSONDecodeError):
        claude.messages.create(model="m", max_tokens=10, messages=MESSAGES)


def _cut_mid_body(exc: BaseException | None) -> bool:
    """The HTTP client saw the body end early, whether the SDK raises that error as it is
    (anthropic before 2.17) or wrapped in its own connection error (openai, anthropic 2.17)."""
    while exc is not None:
        if type(exc).__name__ == "RemoteProtocolError":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def test_truncated_streams(
    server: LocalLLMServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    long_reply = Reply(content="one two three four five six", truncate_stream_after=3)
    server.script(long_reply)
    seen = []
    with pytest.raises(Exception) as raised:
        for chunk in oai.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["", "one", " two"] and _cut_mid_body(raised.value)

    server.script(long_reply)
    with pytest.raises(Exception) as raised:
        list(claude.messages.create(model="m", max_tokens=100, messages=MESSAGES, stream=True))
    assert _cut_mid_body(raised.value)

    server.script(
        Reply(content="one two three four", truncate_stream_after=3, truncate_cleanly=True)
    )
    chunks = list(oai.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert len(chunks) == 3 and chunks[-1].choices[0].finish_reason is None
    assert oai.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content


def test_client_closing_stream_early_leaves_server_usable(
    server: LocalLLMServer, oai: openai.OpenAI
) -> None:
    server.script(Reply(content="word " * 200, chunk_delay_s=0.005))
    stream = oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()

    async def abandon() -> None:
        async with _async_openai(server) as client:
            async_stream = await client.chat.completions.create(
                model="m", messages=MESSAGES, stream=True
            )
            async for _ in async_stream:
                break
            await async_stream.close()

    server.script(Reply(content="word " * 200, chunk_delay_s=0.005))
    asyncio.run(abandon())
    assert oai.chat.completions.create(model="m", messages=MESSAGES).choices[
        0
    ].message.content == answer_text(QUESTION)
    assert server.request_count == 3


def test_slow_reply_times_out_in_the_sdk(server: LocalLLMServer) -> None:
    server.script(Reply(delay_s=1.0))
    client = openai.OpenAI(
        base_url=server.openai_base_url, api_key="local", max_retries=0, timeout=0.1
    )
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    client.close()


def test_broken_responder_answers_500_without_retries(
    server: LocalLLMServer, oai: openai.OpenAI
) -> None:
    def broken(request: ReceivedRequest) -> Reply:
        raise RuntimeError("responder bug")

    server.responder = broken
    with pytest.raises(openai.InternalServerError, match="responder bug"):
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert server.request_count == 1


def test_raw_socket_keep_alive_and_content_length(server: LocalLLMServer) -> None:
    """Two requests on one socket: exact Content-Length framing lets the second through."""
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    with (
        socket.create_connection((host, int(port)), timeout=5) as sock,
        sock.makefile("rb") as reader,
    ):
        for _ in range(2):
            sock.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            payload = json.loads(reader.read(int(headers["content-length"])))
            assert payload["choices"][0]["message"]["content"] == answer_text(QUESTION)
    assert len({r.client_port for r in server.requests}) == 1


def test_default_responder_is_deterministic() -> None:
    request = ReceivedRequest(0, "POST", "/v1/chat/completions", {}, b"", {"messages": MESSAGES})
    assert default_responder(request) == default_responder(request)
    assert answer_text("a") != answer_text("b")


def test_recorded_requests_are_capped_but_counted() -> None:
    with LocalLLMServer(keep_requests=2) as server, httpx2.Client(base_url=server.url) as client:
        for i in range(3):
            client.post("/v1/embeddings", json={"model": "e", "input": str(i)}).raise_for_status()
        assert [r.json["input"] for r in server.requests] == [
            "1",
            "2",
        ] and server.request_count == 3
