"""OpenAI SDK instrumentation: chat completions, legacy completions, responses, embeddings;
sync, async, streams.

Wrapped with wrapt at the resource classes, so every client (including Azure and any
OpenAI-compatible server reached through ``base_url``) is covered. ``.stream()`` helpers call
``create(stream=True)`` internally and are covered by it. HTTP retries inside one SDK call are
counted by hooking the SDK's retry sleep.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from frictionlens import semconv
from frictionlens.features.invocation import LLMInvocation
from frictionlens.features.readers import (
    REQUEST_PARAMS,
    content_text,
    fields,
    format_request,
    get,
    given,
    message_text,
    numeric_params,
    tools_forced,
)
from frictionlens.instrumentation import calls
from frictionlens.instrumentation.calls import CallSpec

#: gen_ai.provider.name for OpenAI-compatible hosts we recognise; anything else is "openai"
PROVIDER_BY_HOST = {
    "api.openai.com": semconv.PROVIDER_OPENAI,
    "api.groq.com": semconv.PROVIDER_GROQ,
    "api.deepseek.com": semconv.PROVIDER_DEEPSEEK,
    "openrouter.ai": semconv.PROVIDER_OPENROUTER,
    "api.mistral.ai": semconv.PROVIDER_MISTRAL,
    "api.x.ai": semconv.PROVIDER_X_AI,
    "api.perplexity.ai": semconv.PROVIDER_PERPLEXITY,
    "generativelanguage.googleapis.com": semconv.PROVIDER_GEMINI,
}
#: local servers are told apart by their default port only (vLLM's 8000 is too common to tell)
PROVIDER_BY_LOCAL_PORT = {11434: semconv.PROVIDER_OLLAMA}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def provider_for(host: str | None, port: int | None) -> str:
    """gen_ai.provider.name of an OpenAI-compatible server, from its base URL's host and port."""
    if not host:
        return semconv.PROVIDER_OPENAI
    if host.endswith(".openai.azure.com"):
        return semconv.PROVIDER_AZURE_OPENAI
    if host in _LOCAL_HOSTS and port in PROVIDER_BY_LOCAL_PORT:
        return PROVIDER_BY_LOCAL_PORT[port]
    return PROVIDER_BY_HOST.get(host, semconv.PROVIDER_OPENAI)


_WRAPPED = (
    ("openai.resources.chat.completions.completions", "Completions.create", "chat"),
    ("openai.resources.chat.completions.completions", "AsyncCompletions.create", "chat"),
    ("openai.resources.chat.completions.completions", "Completions.parse", "chat"),
    ("openai.resources.chat.completions.completions", "AsyncCompletions.parse", "chat"),
    ("openai.resources.completions", "Completions.create", "completions"),
    ("openai.resources.completions", "AsyncCompletions.create", "completions"),
    ("openai.resources.responses.responses", "Responses.create", "responses"),
    ("openai.resources.responses.responses", "AsyncResponses.create", "responses"),
    ("openai.resources.responses.responses", "Responses.parse", "responses"),
    ("openai.resources.responses.responses", "AsyncResponses.parse", "responses"),
    ("openai.resources.embeddings", "Embeddings.create", "embeddings"),
    ("openai.resources.embeddings", "AsyncEmbeddings.create", "embeddings"),
)
_BASE_CLIENT = "openai._base_client"


# -- request -----------------------------------------------------------------------------
def _server(instance: Any) -> tuple[str | None, int | None, str]:
    try:
        url = instance._client.base_url
        host = url.host
        port = url.port
    except Exception:
        return None, None, semconv.PROVIDER_OPENAI
    return host, port, provider_for(host, port)


def read_request(kind: str, instance: Any, kwargs: Mapping[str, Any]) -> LLMInvocation:
    host, port, provider = _server(instance)
    model = kwargs.get("model")
    op = {
        "chat": semconv.OP_CHAT,
        "completions": semconv.OP_TEXT_COMPLETION,
        "responses": semconv.OP_CHAT,
        "embeddings": semconv.OP_EMBEDDINGS,
    }[kind]
    inv = LLMInvocation(
        operation=op,
        provider=provider,
        request_model=str(model) if given(model) else None,
        server_address=host,
        server_port=port,
        streaming=bool(kwargs.get("stream")) and given(kwargs.get("stream")),
    )
    ra = inv.request_attributes
    ra.update(numeric_params(kwargs, REQUEST_PARAMS))
    n = kwargs.get("n")
    if given(n) and isinstance(n, int) and n != 1:
        ra[semconv.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if inv.streaming:
        ra[semconv.GEN_AI_REQUEST_STREAM] = True
    if kind == "embeddings":
        return inv
    if kind == "completions":
        prompt = prompt_text(kwargs.get("prompt"))
        if prompt:
            inv.messages = [("user", prompt)]
        return inv
    if kind == "chat":
        inv.expected_format, inv.schema = format_request(kwargs.get("response_format"))
        messages = kwargs.get("messages")
        if given(messages):
            inv.messages = [message_text(m) for m in messages]
    else:
        inv.expected_format, inv.schema = format_request(
            get(kwargs.get("text"), "format")
            if given(kwargs.get("text"))
            else kwargs.get("text_format")
        )
        instructions = kwargs.get("instructions")
        if given(instructions) and isinstance(instructions, str):
            inv.system_text = instructions
            inv.messages.append(("system", instructions))
        items = kwargs.get("input")
        if isinstance(items, str):
            inv.messages.append(("user", items))
        elif given(items):
            inv.messages.extend(message_text(m) for m in items)
    inv.tools_forced = tools_forced(kwargs)
    return inv


def prompt_text(prompt: Any) -> str:
    """The text of a legacy completion's ``prompt``: a string, or strings (a batch) joined;
    token ids have none."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt):
        return "\n".join(prompt)
    return ""


# -- response ----------------------------------------------------------------------------
def read_usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    # chat names first; the responses-API names only when those are absent (no eager lookups)
    inp = get(usage, "prompt_tokens")
    if inp is None:
        inp = get(usage, "input_tokens")
    out = get(usage, "completion_tokens")
    if out is None:
        out = get(usage, "output_tokens")
    if isinstance(inp, int):
        inv.input_tokens = inp
    if isinstance(out, int):
        inv.output_tokens = out
    details = get(usage, "prompt_tokens_details")
    if details is None:
        details = get(usage, "input_tokens_details")
    cached = get(details, "cached_tokens") if details is not None else None
    if isinstance(cached, int):
        inv.cache_read_tokens = cached


def read_response_common(inv: LLMInvocation, resp: Any) -> None:
    inv.response_id = get(resp, "id") or inv.response_id
    inv.response_model = get(resp, "model") or inv.response_model
    fp = get(resp, "system_fingerprint")
    if fp:
        inv.response_attributes[semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fp
    tier = get(resp, "service_tier")
    if isinstance(tier, str):
        inv.response_attributes[semconv.OPENAI_RESPONSE_SERVICE_TIER] = tier
    read_usage(inv, get(resp, "usage"))


def read_chat_response(inv: LLMInvocation, resp: Any) -> None:
    read_response_common(inv, resp)
    inv.outputs, inv.finish_reasons, inv.tool_calls, inv.tool_call_ids = [], [], [], []
    for choice in get(resp, "choices") or ():
        msg = get(choice, "message")
        inv.outputs.append(content_text(get(msg, "content")))
        if get(msg, "refusal"):
            inv.refusal = True
        for call in get(msg, "tool_calls") or ():
            fn = get(call, "function")
            if fn is not None:
                inv.tool_calls.append((str(get(fn, "name") or ""), str(get(fn, "arguments") or "")))
                inv.tool_call_ids.append(get(call, "id"))
        legacy = get(msg, "function_call")  # the deprecated ``functions`` API: one call, no id
        if legacy is not None:
            inv.tool_calls.append(
                (str(get(legacy, "name") or ""), str(get(legacy, "arguments") or ""))
            )
            inv.tool_call_ids.append(None)
        reason = get(choice, "finish_reason")
        if reason:
            inv.finish_reasons.append(str(reason))
    inv.truncated = "length" in inv.finish_reasons


#: the fields of a streamed choice and of its delta that ``read_chat_chunk`` reads
_CHUNK_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason"})
_CHUNK_DELTA_KEYS = frozenset({"content", "refusal", "function_call", "tool_calls"})


def read_chat_chunk(inv: LLMInvocation, chunk: Any) -> None:
    if (
        inv.response_id is None
    ):  # id, model, fingerprint, tier repeat on every chunk: read them once
        read_response_common(inv, chunk)
    else:
        usage = get(chunk, "usage")
        if usage is not None:
            read_usage(inv, usage)
    for choice in get(chunk, "choices") or ():
        c = fields(choice, _CHUNK_CHOICE_KEYS)
        i = c.get("index") or 0
        parts = inv.output_parts
        while len(parts) <= i:
            parts.append([])
        delta = fields(c.get("delta"), _CHUNK_DELTA_KEYS)
        content = delta.get("content")
        if content:
            parts[i].append(content)  # joined once when the span ends: O(length), not O(length²)
        if delta.get("refusal"):
            inv.refusal = True
        legacy = delta.get("function_call")
        for call in delta.get("tool_calls") or (
            [{"index": 0, "function": legacy}] if legacy is not None else ()
        ):
            j = get(call, "index", 0) or 0
            calls = inv.tool_call_parts
            while len(calls) <= j:
                calls.append([""])
                inv.tool_call_ids.append(None)
            inv.tool_call_ids[j] = inv.tool_call_ids[j] or get(call, "id")
            fn = get(call, "function")
            if not calls[j][0]:
                calls[j][0] = str(get(fn, "name") or "")
            args = get(fn, "arguments")
            if args:
                calls[j].append(str(args))
        reason = c.get("finish_reason")
        if reason:
            inv.finish_reasons.append(str(reason))
            inv.truncated = inv.truncated or reason == "length"


def read_completion_response(inv: LLMInvocation, resp: Any) -> None:
    """A legacy completion: the chat shape (id, usage, finish reasons) with a text per choice
    where chat has a message."""
    read_chat_response(inv, resp)
    inv.outputs = [str(get(choice, "text") or "") for choice in get(resp, "choices") or ()]


def read_completion_chunk(inv: LLMInvocation, chunk: Any) -> None:
    """A streamed legacy completion chunk: as a chat chunk, with text in place of a delta."""
    read_chat_chunk(inv, chunk)
    for choice in get(chunk, "choices") or ():
        text = get(choice, "text")
        if text:
            inv.output_parts[get(choice, "index", 0) or 0].append(text)


def read_responses_response(inv: LLMInvocation, resp: Any) -> None:
    read_response_common(inv, resp)
    texts: list[str] = []
    inv.tool_calls, inv.tool_call_ids = [], []
    for item in get(resp, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            for part in get(item, "content") or ():
                if get(part, "type") == "refusal":
                    inv.refusal = True
                elif isinstance(get(part, "text"), str):
                    texts.append(get(part, "text"))
        elif kind == "function_call":
            inv.tool_calls.append((str(get(item, "name") or ""), str(get(item, "arguments") or "")))
            inv.tool_call_ids.append(get(item, "call_id"))
    inv.outputs = ["".join(texts)] if texts or not inv.tool_calls else []
    inv.output_parts = []  # the final response supersedes the streamed deltas
    status = get(resp, "status")
    reason = get(get(resp, "incomplete_details"), "reason")
    if status == "incomplete":
        inv.truncated = reason == "max_output_tokens"
        inv.finish_reasons = ["length" if inv.truncated else str(reason or "incomplete")]
    elif status:
        inv.finish_reasons = (
            ["tool_calls" if inv.tool_calls else "stop"] if status == "completed" else [str(status)]
        )


def read_responses_event(inv: LLMInvocation, event: Any) -> None:
    kind = get(event, "type")
    if kind == "response.output_text.delta":
        if not inv.output_parts:
            inv.output_parts.append([])
        inv.output_parts[0].append(get(event, "delta") or "")
    elif kind == "response.refusal.delta":
        inv.refusal = True
    elif kind in (
        "response.created",
        "response.completed",
        "response.incomplete",
        "response.failed",
    ):
        resp = get(event, "response")
        if resp is not None and kind != "response.created":
            read_responses_response(inv, resp)
        elif resp is not None:
            inv.response_id = get(resp, "id")
            inv.response_model = get(resp, "model")


def read_embeddings_response(inv: LLMInvocation, resp: Any) -> None:
    inv.response_model = get(resp, "model")
    read_usage(inv, get(resp, "usage"))


_RESPONSE = {
    "chat": read_chat_response,
    "completions": read_completion_response,
    "responses": read_responses_response,
    "embeddings": read_embeddings_response,
}
_CHUNK = {
    "chat": read_chat_chunk,
    "completions": read_completion_chunk,
    "responses": read_responses_event,
}


# -- wrappers ----------------------------------------------------------------------------
def _spec(kind: str) -> CallSpec:
    return CallSpec(
        provider="openai",
        request=lambda instance, kwargs: read_request(kind, instance, kwargs),
        response=_RESPONSE[kind],
        chunk=_CHUNK.get(kind),
    )


class OpenAIInstrumentor(BaseInstrumentor):
    """Instruments the ``openai`` SDK. Usually installed by ``frictionlens.instrument()``;
    also found by ``opentelemetry-instrument`` through its entry point."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.92",)

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = calls.telemetry_from(kwargs)
        specs = {kind: _spec(kind) for kind in _RESPONSE}
        calls.wrap_all(
            [
                (
                    module,
                    name,
                    (calls.async_wrapper if name.startswith("Async") else calls.sync_wrapper)(
                        specs[kind], telemetry
                    ),
                )
                for module, name, kind in _WRAPPED
            ]
            + calls.stainless_retry_hooks(_BASE_CLIENT),
            "openai",
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        calls.unwrap_all(
            [(m, n) for m, n, _ in _WRAPPED]
            + [(m, n) for m, n, _ in calls.stainless_retry_hooks(_BASE_CLIENT)]
        )
