"""Renders a ``Reply`` in each provider's wire format: JSON bodies and SSE event streams.

Field names follow the SDKs' own response types (``openai.types.chat``,
``openai.types.responses``, ``anthropic.types``) so both SDKs and their stream managers
(``chat.completions.stream``, ``responses.stream``, ``messages.stream``) parse everything.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from frictionlens.localserver.reply import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    EMBEDDINGS_PATH,
    MESSAGES_PATH,
    RESPONSES_PATH,
    ReceivedRequest,
    Reply,
    Usage,
)
from frictionlens.localserver.responder import estimate_tokens

DEFAULT_MODEL = "local-model"
DEFAULT_EMBEDDING_DIMENSIONS = 64

_TO_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_TO_OPENAI = {v: k for k, v in _TO_ANTHROPIC.items()}
_WORD = re.compile(r"\s*\S+|\s+$")
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def dumps(value: Any) -> bytes:
    # ASCII output (the encoder's default) keeps lone surrogates from fuzzed text encodable.
    return _ENCODER.encode(value).encode()


def split_text(text: str, pieces: int | None) -> list[str]:
    """Stream pieces of ``text``: one a word by default, else exactly ``pieces`` slices."""
    if pieces is None:
        return _WORD.findall(text)
    count = max(1, pieces)
    size = len(text)
    return [text[i * size // count : (i + 1) * size // count] for i in range(count)]


def _model(request: ReceivedRequest, reply: Reply) -> str:
    model = reply.model or request.json.get("model")
    return model if isinstance(model, str) else DEFAULT_MODEL


def _usage(request: ReceivedRequest, reply: Reply) -> Usage:
    if reply.usage is not None:
        return reply.usage
    body = request.json
    prompt_chars = sum(
        _chars(body.get(k))
        for k in ("messages", "input", "system", "instructions", "tools", "prompt")
    )
    output_chars = (
        sum(map(len, reply.texts))
        + sum(len(args) for _, args in reply.tool_calls)
        + len(reply.refusal or "")
    )
    return Usage(estimate_tokens(prompt_chars), estimate_tokens(output_chars))


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_chars(v) for v in value.values())
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    return 0


def openai_finish_reason(reply: Reply) -> str:
    if reply.finish_reason is None:
        return "tool_calls" if reply.tool_calls else "stop"
    return _TO_OPENAI.get(reply.finish_reason, reply.finish_reason)


def anthropic_stop_reason(reply: Reply) -> str:
    if reply.finish_reason is None:
        return (
            "tool_use"
            if reply.tool_calls
            else "refusal"
            if reply.refusal is not None
            else "end_turn"
        )
    return _TO_ANTHROPIC.get(reply.finish_reason, reply.finish_reason)


# --- errors -----------------------------------------------------------------------------

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(provider: str, status: int, error: str | Any | None) -> Any:
    """The provider's error envelope; a non-string ``error`` is the whole body already."""
    if error is not None and not isinstance(error, str):
        return error
    message = error or f"scripted error {status}"
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    if provider == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    code = "rate_limit_exceeded" if status == 429 else None
    return {
        "error": {
            "message": message,
            "type": "server_error" if status >= 500 else kind,
            "param": None,
            "code": code,
        }
    }


# --- OpenAI Chat Completions ------------------------------------------------------------


def _choice_texts(request: ReceivedRequest, reply: Reply) -> list[str]:
    if not isinstance(reply.content, str):
        return reply.texts
    n = request.json.get("n")
    return [reply.content] * (n if isinstance(n, int) and n > 1 else 1)


def _chat_tool_calls(request: ReceivedRequest, reply: Reply, choice: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{request.index:06d}_{choice}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": args},
        }
        for i, (name, args) in enumerate(reply.tool_calls)
    ]


def _openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_read_input_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_head(request: ReceivedRequest, reply: Reply, obj: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-local{request.index:08d}",
        "object": obj,
        "created": int(time.time()),
        "model": _model(request, reply),
        "service_tier": "default",
        "system_fingerprint": reply.system_fingerprint,
    }


def chat_completion(request: ReceivedRequest, reply: Reply) -> Any:
    finish = openai_finish_reason(reply)
    choices = []
    for index, text in enumerate(_choice_texts(request, reply)):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text
            if text or not (reply.tool_calls or reply.refusal is not None)
            else None,
            "refusal": reply.refusal,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = _chat_tool_calls(request, reply, index)
        choices.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": finish}
        )
    return {
        **_chat_head(request, reply, "chat.completion"),
        "choices": choices,
        "usage": _openai_usage(_usage(request, reply)),
    }


def chat_completion_events(request: ReceivedRequest, reply: Reply) -> Iterator[bytes]:
    head = _chat_head(request, reply, "chat.completion.chunk")
    options = request.json.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    if include_usage:
        head["usage"] = None

    prefix = (
        b"data: " + dumps(head)[:-1] + b',"choices":['
    )  # the envelope is the same in every chunk

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return (
            prefix
            + dumps({"index": index, "delta": delta, "logprobs": None, "finish_reason": finish})
            + b"]}\n\n"
        )

    finish = openai_finish_reason(reply)
    for index, text in enumerate(_choice_texts(request, reply)):
        yield chunk(index, {"role": "assistant", "content": "", "refusal": None})
        for piece in split_text(text, reply.stream_chunks):
            yield chunk(index, {"content": piece})
        for piece in split_text(reply.refusal, reply.stream_chunks) if reply.refusal else ():
            yield chunk(index, {"refusal": piece})
        for position, call in enumerate(_chat_tool_calls(request, reply, index)):
            function = call["function"]
            first = {
                "index": position,
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": ""},
            }
            yield chunk(index, {"tool_calls": [first]})
            for piece in split_text(function["arguments"], reply.stream_chunks):
                yield chunk(
                    index, {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}
                )
        yield chunk(index, {}, finish)
    if include_usage:
        yield (
            b"data: "
            + dumps({**head, "choices": [], "usage": _openai_usage(_usage(request, reply))})
            + b"\n\n"
        )
    yield b"data: [DONE]\n\n"


# --- OpenAI legacy Completions ----------------------------------------------------------


def _completion_head(request: ReceivedRequest, reply: Reply) -> dict[str, Any]:
    return {
        "id": f"cmpl-local{request.index:08d}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": _model(request, reply),
        "system_fingerprint": reply.system_fingerprint,
    }


def text_completion(request: ReceivedRequest, reply: Reply) -> Any:
    finish = openai_finish_reason(reply)
    return {
        **_completion_head(request, reply),
        "choices": [
            {"index": i, "text": text, "logprobs": None, "finish_reason": finish}
            for i, text in enumerate(_choice_texts(request, reply))
        ],
        "usage": _openai_usage(_usage(request, reply)),
    }


def text_completion_events(request: ReceivedRequest, reply: Reply) -> Iterator[bytes]:
    head = _completion_head(request, reply)
    finish = openai_finish_reason(reply)
    for index, text in enumerate(_choice_texts(request, reply)):
        pieces = split_text(text, reply.stream_chunks)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            choice = {"index": index, "text": piece, "logprobs": None}
            choice["finish_reason"] = finish if last else None
            yield b"data: " + dumps({**head, "choices": [choice]}) + b"\n\n"
    options = request.json.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        usage = _openai_usage(_usage(request, reply))
        yield b"data: " + dumps({**head, "choices": [], "usage": usage}) + b"\n\n"
    yield b"data: [DONE]\n\n"


# --- OpenAI Responses -------------------------------------------------------------------


def _sse(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + dumps(event) + b"\n\n"


def _response_output(request: ReceivedRequest, reply: Reply) -> list[dict[str, Any]]:
    """The finished output items: one message (texts, refusal) and one item per tool call."""
    parts: list[dict[str, Any]] = [
        {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        for text in reply.texts
        if text or not (reply.tool_calls or reply.refusal is not None)
    ]
    if reply.refusal is not None:
        parts.append({"type": "refusal", "refusal": reply.refusal})
    items: list[dict[str, Any]] = []
    if parts:
        items.append(
            {
                "id": f"msg_local{request.index:08d}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": parts,
            }
        )
    for i, (name, args) in enumerate(reply.tool_calls):
        items.append(
            {
                "id": f"fc_local{request.index:08d}_{i}",
                "type": "function_call",
                "call_id": f"call_{request.index:06d}_{i}",
                "name": name,
                "arguments": args,
                "status": "completed",
            }
        )
    return items


def _response_object(
    request: ReceivedRequest, reply: Reply, output: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The response envelope; ``output=None`` is the in-progress snapshot that opens a stream."""
    body = request.json
    finish = openai_finish_reason(reply)
    done = output is not None
    usage = _usage(request, reply)
    return {
        "id": f"resp_local{request.index:08d}",
        "object": "response",
        "created_at": int(time.time()),
        "status": ("incomplete" if finish == "length" else "completed") if done else "in_progress",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"}
        if done and finish == "length"
        else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": _model(request, reply),
        "output": output or [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "metadata": body.get("metadata") or {},
        "usage": (
            {
                "input_tokens": usage.input_tokens,
                "input_tokens_details": {
                    "cached_tokens": usage.cache_read_input_tokens,
                    "cache_write_tokens": usage.cache_creation_input_tokens,
                },
                "output_tokens": usage.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage.input_tokens + usage.output_tokens,
            }
            if done
            else None
        ),
    }


def response(request: ReceivedRequest, reply: Reply) -> Any:
    return _response_object(request, reply, _response_output(request, reply))


def response_events(request: ReceivedRequest, reply: Reply) -> Iterator[bytes]:
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields})

    opening = _response_object(request, reply, None)
    yield event("response.created", response=opening)
    yield event("response.in_progress", response=opening)
    output = _response_output(request, reply)
    for out_index, item in enumerate(output):
        if item["type"] == "function_call":
            yield event(
                "response.output_item.added",
                output_index=out_index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for piece in split_text(item["arguments"], reply.stream_chunks):
                yield event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=out_index,
                    delta=piece,
                )
            yield event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=out_index,
                arguments=item["arguments"],
            )
        else:
            yield event(
                "response.output_item.added",
                output_index=out_index,
                item={**item, "status": "in_progress", "content": []},
            )
            for part_index, part in enumerate(item["content"]):
                where = {
                    "item_id": item["id"],
                    "output_index": out_index,
                    "content_index": part_index,
                }
                field = "text" if part["type"] == "output_text" else "refusal"
                name = "output_text" if field == "text" else "refusal"
                yield event("response.content_part.added", **where, part={**part, field: ""})
                extra = {"logprobs": []} if field == "text" else {}
                for piece in split_text(part[field], reply.stream_chunks):
                    yield event(f"response.{name}.delta", **where, delta=piece, **extra)
                yield event(f"response.{name}.done", **where, **{field: part[field]}, **extra)
                yield event("response.content_part.done", **where, part=part)
        yield event("response.output_item.done", output_index=out_index, item=item)
    final = _response_object(request, reply, output)
    yield event(
        "response.incomplete" if final["status"] == "incomplete" else "response.completed",
        response=final,
    )


# --- OpenAI Embeddings ------------------------------------------------------------------


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector from hashed character trigrams: equal texts map to equal vectors and
    texts sharing wording point in similar directions, like a (very) small embedding model."""
    vector = [0.0] * dimensions
    data = f"  {text.lower()} ".encode("utf-8", "surrogatepass")
    for i in range(len(data) - 2):
        h = zlib.crc32(data[i : i + 3])
        vector[h % dimensions] += 1.0 if h & 0x80000000 else -1.0
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


def embeddings(request: ReceivedRequest, reply: Reply) -> Any:
    body = request.json
    raw = body.get("input")
    inputs = (
        [raw]
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int))
        else list(raw or [])
    )
    dims = body.get("dimensions")
    dims = dims if isinstance(dims, int) and dims > 0 else DEFAULT_EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = embedding_vector(item if isinstance(item, str) else json.dumps(item), dims)
        encoded: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = reply.usage.input_tokens if reply.usage else estimate_tokens(_chars(inputs))
    return {
        "object": "list",
        "data": data,
        "model": _model(request, reply),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- Anthropic Messages -----------------------------------------------------------------


def _anthropic_blocks(request: ReceivedRequest, reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": t} for t in reply.texts if t]
    if reply.refusal:
        blocks.append({"type": "text", "text": reply.refusal})
    for i, (name, args) in enumerate(reply.tool_calls):
        try:
            arguments: Any = json.loads(args)
        except ValueError:
            arguments = args  # not expressible as an object: sent as the raw string
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_local{request.index:06d}_{i}",
                "name": name,
                "input": arguments,
            }
        )
    return blocks


def _anthropic_usage(usage: Usage, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "service_tier": "standard",
    }


def _stop_details(reply: Reply, stop: str | None) -> dict[str, Any] | None:
    return (
        {"type": "refusal", "category": None, "explanation": reply.refusal}
        if stop == "refusal"
        else None
    )


def _message_object(
    request: ReceivedRequest, reply: Reply, content: list[dict[str, Any]], done: bool
) -> dict[str, Any]:
    usage = _usage(request, reply)
    stop = anthropic_stop_reason(reply) if done else None
    return {
        "id": f"msg_local{request.index:08d}",
        "type": "message",
        "role": "assistant",
        "model": _model(request, reply),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "stop_details": _stop_details(reply, stop),
        "usage": _anthropic_usage(usage, usage.output_tokens if done else 1),
    }


def message(request: ReceivedRequest, reply: Reply) -> Any:
    return _message_object(request, reply, _anthropic_blocks(request, reply), done=True)


def message_events(request: ReceivedRequest, reply: Reply) -> Iterator[bytes]:
    yield _sse(
        {"type": "message_start", "message": _message_object(request, reply, [], done=False)}
    )
    yield _sse({"type": "ping"})
    arguments = iter(
        [args for _, args in reply.tool_calls]
    )  # streamed as sent, even when not valid JSON
    for index, block in enumerate(_anthropic_blocks(request, reply)):
        if block["type"] == "tool_use":
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            pieces = split_text(next(arguments), reply.stream_chunks)
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        else:
            start = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": p}
                for p in split_text(block["text"], reply.stream_chunks)
            ]
        yield _sse({"type": "content_block_start", "index": index, "content_block": start})
        for delta in deltas:
            yield _sse({"type": "content_block_delta", "index": index, "delta": delta})
        yield _sse({"type": "content_block_stop", "index": index})
    stop = anthropic_stop_reason(reply)
    usage = _usage(request, reply)
    yield _sse(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop,
                "stop_sequence": None,
                "stop_details": _stop_details(reply, stop),
            },
            "usage": _anthropic_usage(usage, usage.output_tokens),
        }
    )
    yield _sse({"type": "message_stop"})


@dataclass(frozen=True)
class Route:
    """How one endpoint renders a reply: a JSON body, and an SSE stream when it can stream."""

    provider: str
    body: Callable[[ReceivedRequest, Reply], Any]
    events: Callable[[ReceivedRequest, Reply], Iterator[bytes]] | None


ROUTES: dict[str, Route] = {
    CHAT_PATH: Route("openai", chat_completion, chat_completion_events),
    COMPLETIONS_PATH: Route("openai", text_completion, text_completion_events),
    RESPONSES_PATH: Route("openai", response, response_events),
    EMBEDDINGS_PATH: Route("openai", embeddings, None),
    MESSAGES_PATH: Route("anthropic", message, message_events),
}
