"""Anthropic SDK instrumentation: ``messages.create`` (sync, async, ``stream=True``),
``messages.stream`` and ``messages.parse``, on ``client.messages`` and ``client.beta.messages``.

Wrapped with wrapt at the resource classes, like the OpenAI instrumentation. ``messages.stream``
posts the request itself (not through ``create``), so its manager's request is wrapped: the call
span starts when the stream is entered and ends when it is exhausted, fails or is closed. HTTP
retries inside one SDK call are counted by hooking the SDK's retry sleep.

The SDK's own call span is not started for calls we instrument: docs/architecture.md, "one span
per call when the SDK traces itself", says why and how, for every SDK.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from frictionlens import semconv
from frictionlens.features.invocation import LLMInvocation
from frictionlens.features.readers import get, given, numeric_params, pydantic_schema
from frictionlens.health import count_internal_error
from frictionlens.instrumentation import calls
from frictionlens.instrumentation.calls import CallSpec
from frictionlens.instrumentation.telemetry import Telemetry, current_invocation

_log = logging.getLogger(__name__)

PROVIDER = "anthropic"

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
}
#: (module, "Class.method", kind) for ``client.messages`` and ``client.beta.messages`` (the
#: beta resource is what frameworks such as pydantic-ai call); ``parse`` posts by itself
_WRAPPED = tuple(
    (module, f"{cls}.{method}", method)
    for module in (_MESSAGES, _BETA_MESSAGES)
    for cls in ("Messages", "AsyncMessages")
    for method in ("create", "parse", "stream")
)
_BASE_CLIENT = "anthropic._base_client"
_SDK_SPAN = (_BASE_CLIENT, "start_api_call_span")


# -- request -----------------------------------------------------------------------------
def _block_text(block: Any) -> str:
    kind = get(block, "type")
    if kind == "text":
        return str(get(block, "text") or "")
    if kind == "tool_use":
        return f"{get(block, 'name')}({json.dumps(get(block, 'input') or {}, default=str)})"
    if kind == "tool_result":
        return _content_text(get(block, "content"))
    return ""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, (list, tuple)) else [content]:
        text = block if isinstance(block, str) else _block_text(block)
        if text:
            parts.append(text)
    return "\n".join(parts)


def _message(msg: Any) -> tuple[str, str]:
    role = str(get(msg, "role") or "user")
    content = get(msg, "content")
    if (
        role == "user"
        and isinstance(content, (list, tuple))
        and content
        and all(get(b, "type") == "tool_result" for b in content if not isinstance(b, str))
        and not any(isinstance(b, str) for b in content)
    ):
        role = "tool"
    return role, _content_text(content)


def _server(instance: Any) -> tuple[str | None, int | None]:
    try:
        url = instance._client.base_url
        return url.host, url.port
    except Exception:
        return None, None


def _requested_format(params: Mapping[str, Any]) -> Any:
    config = params.get("output_config")
    fmt = get(config, "format") if given(config) else None
    return fmt if given(fmt) else params.get("output_format")


def _expected_format(kwargs: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    fmt = _requested_format(kwargs)
    extra = kwargs.get("extra_body")
    if not given(fmt) and isinstance(extra, Mapping):  # fields the SDK's signature lacks
        fmt = _requested_format(extra)
    if isinstance(fmt, type):
        return semconv.FORMAT_JSON_SCHEMA, pydantic_schema(fmt)
    if given(fmt) and get(fmt, "type") == "json_schema":
        schema = get(fmt, "schema")
        return semconv.FORMAT_JSON_SCHEMA, schema if isinstance(schema, Mapping) else None
    return semconv.FORMAT_TEXT, None


def _tools_forced(kwargs: Mapping[str, Any]) -> bool:
    choice = kwargs.get("tool_choice")
    if not given(kwargs.get("tools")) or not given(choice):
        return False
    return choice == "any" or get(choice, "type") in ("tool", "any")


def _request(instance: Any, kwargs: Mapping[str, Any], streaming: bool) -> LLMInvocation:
    host, port = _server(instance)
    model = kwargs.get("model")
    inv = LLMInvocation(
        operation=semconv.OP_CHAT,
        provider=PROVIDER,
        request_model=str(model) if given(model) else None,
        server_address=host,
        server_port=port,
        streaming=streaming,
    )
    ra = inv.request_attributes
    ra.update(numeric_params(kwargs, _PARAMS))
    if streaming:
        ra[semconv.GEN_AI_REQUEST_STREAM] = True
    system = kwargs.get("system")
    if given(system):
        text = _content_text(system)
        inv.system_text = text
        inv.messages.append(("system", text))
    messages = kwargs.get("messages")
    if given(messages):
        inv.messages.extend(_message(m) for m in messages)
    inv.expected_format, inv.schema = _expected_format(kwargs)
    inv.tools_forced = _tools_forced(kwargs)
    return inv


# -- response ----------------------------------------------------------------------------
def _usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    inp = get(usage, "input_tokens")
    read = get(usage, "cache_read_input_tokens")
    created = get(usage, "cache_creation_input_tokens")
    if isinstance(read, int):
        inv.cache_read_tokens = read
    if isinstance(created, int):
        inv.cache_creation_tokens = created
    if isinstance(inp, int):  # the conventions count cached input as input
        inv.input_tokens = inp + (inv.cache_read_tokens or 0) + (inv.cache_creation_tokens or 0)
    out = get(usage, "output_tokens")
    if isinstance(out, int):
        inv.output_tokens = out


def _stop(inv: LLMInvocation, reason: Any) -> None:
    if not reason:
        return
    inv.finish_reasons = [str(reason)]
    inv.truncated = reason == "max_tokens"
    if reason == "refusal":
        inv.refusal = True


def _response(inv: LLMInvocation, resp: Any) -> None:
    inv.response_id = get(resp, "id") or inv.response_id
    inv.response_model = get(resp, "model") or inv.response_model
    _usage(inv, get(resp, "usage"))
    texts: list[str] = []
    inv.tool_calls, inv.tool_call_ids = [], []
    for block in get(resp, "content") or ():
        kind = get(block, "type")
        if kind == "text":
            texts.append(str(get(block, "text") or ""))
        elif kind == "tool_use":
            inv.tool_calls.append(
                (
                    str(get(block, "name") or ""),
                    json.dumps(get(block, "input") or {}, default=str),
                )
            )
            inv.tool_call_ids.append(get(block, "id"))
    inv.outputs = ["".join(texts)] if texts or not inv.tool_calls else []
    _stop(inv, get(resp, "stop_reason"))


def _event(inv: LLMInvocation, event: Any) -> None:
    kind = get(event, "type")
    if kind == "content_block_delta":
        delta = get(event, "delta")
        dkind = get(delta, "type")
        if dkind == "text_delta":
            if not inv.output_parts:
                inv.output_parts.append([])
            inv.output_parts[0].append(get(delta, "text") or "")  # joined once when the span ends
        elif dkind == "input_json_delta" and inv.tool_call_parts:
            inv.tool_call_parts[-1].append(get(delta, "partial_json") or "")
    elif kind == "content_block_start":
        block = get(event, "content_block")
        if get(block, "type") == "tool_use":
            inv.tool_call_parts.append([str(get(block, "name") or "")])
            inv.tool_call_ids.append(get(block, "id"))
    elif kind == "message_start":
        msg = get(event, "message")
        inv.response_id = get(msg, "id") or inv.response_id
        inv.response_model = get(msg, "model") or inv.response_model
        _usage(inv, get(msg, "usage"))
    elif kind == "message_delta":
        _stop(inv, get(get(event, "delta"), "stop_reason"))
        # cumulative and final: with server tools (web search, code execution) its input
        # count includes the tool results and exceeds message_start's
        _usage(inv, get(event, "usage"))


# -- wrappers ----------------------------------------------------------------------------
def _is_stream(kwargs: Mapping[str, Any]) -> bool:
    return bool(kwargs.get("stream")) and given(kwargs.get("stream"))


#: ``create``: streams when asked to; ``stream``: always a stream
CREATE = CallSpec(
    PROVIDER,
    lambda instance, kwargs: _request(instance, kwargs, _is_stream(kwargs)),
    _response,
    _event,
)
STREAM = CallSpec(
    PROVIDER, lambda instance, kwargs: _request(instance, kwargs, True), _response, _event
)


def stream_wrapper(telemetry: Telemetry):
    """``messages.stream``: the request runs when the manager is entered; wrap that request."""

    def wrapper(wrapped, instance, args, kwargs):
        manager = wrapped(*args, **kwargs)
        name = type(manager).__name__  # (Beta)(Async)MessageStreamManager
        sync = "Async" not in name
        attr = f"_{name}__api_request"
        request = getattr(manager, attr, None)
        if request is None:
            return manager
        if sync:

            def replacement() -> Any:
                return calls.run(STREAM, telemetry, instance, kwargs, request)
        else:

            async def awaited() -> Any:
                return await request

            replacement = calls.run_async(STREAM, telemetry, instance, kwargs, awaited)  # type: ignore[assignment]
        try:
            setattr(manager, attr, replacement)
        except Exception:
            if not sync:
                replacement.close()  # type: ignore[attr-defined]
            count_internal_error(PROVIDER)
        return manager

    return wrapper


def _sdk_span_hook(wrapped, instance, args, kwargs):
    """No SDK call span while one of ours runs: one GenAI span per call."""
    inv = current_invocation.get()
    if inv is not None and not inv.ended and inv.provider == PROVIDER:
        return None
    return wrapped(*args, **kwargs)


class AnthropicInstrumentor(BaseInstrumentor):
    """Instruments the ``anthropic`` SDK. Usually installed by ``frictionlens.instrument()``;
    also found by ``opentelemetry-instrument`` through its entry point."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 0.50",)

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = calls.telemetry_from(kwargs)
        create = (calls.sync_wrapper(CREATE, telemetry), calls.async_wrapper(CREATE, telemetry))
        wrappers = {"create": create, "parse": create, "stream": (stream_wrapper(telemetry),) * 2}
        calls.wrap_all(
            [
                (module, name, wrappers[kind][name.startswith("Async")])
                for module, name, kind in _WRAPPED
            ]
            + [(*_SDK_SPAN, _sdk_span_hook)]
            + calls.stainless_retry_hooks(_BASE_CLIENT),
            "anthropic",
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        calls.unwrap_all(
            [(m, n) for m, n, _ in _WRAPPED]
            + [_SDK_SPAN]
            + [(m, n) for m, n, _ in calls.stainless_retry_hooks(_BASE_CLIENT)]
        )
