"""Shared by the benches: OpenAI and Anthropic clients over an in-process mock transport,
and statistics.

The openai (3.x) and anthropic (2.x) SDKs talk through ``httpx2``; a ``MockTransport``
answers in-process, so a bench measures the SDK plus whatever wraps it, never the network.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
ANSWER = (
    "To rotate the logs daily, add a logrotate rule for the service: set `daily`, keep seven "
    "files with `rotate 7`, compress the old ones with `compress` and `delaycompress`, and use "
    "`copytruncate` so the process keeps its file handle. Test the rule with `logrotate -d` "
    "before relying on it, then check the next morning that yesterday's file was compressed "
    "and that the service is still writing to the live log without a restart."
)
MESSAGES: list[dict[str, str]] = [
    {
        "role": "system",
        "content": "You are a concise assistant for a Linux operations team. "
        "Answer with the exact commands or configuration needed, explain each step in one short "
        "sentence, and say so plainly when you are not sure rather than guessing.",
    },
    {"role": "user", "content": "How do I keep the logs of my service from filling the disk?"},
    {
        "role": "assistant",
        "content": "Use logrotate, or journald limits if the service logs to the journal.",
    },
]
QUESTION = "It writes to /var/log/app/app.log itself; how do I rotate that file every day? (#{n})"


def messages(n: int) -> list[dict[str, str]]:
    """A two-turn conversation whose last user message differs per call (no cache hits)."""
    return [*MESSAGES, {"role": "user", "content": QUESTION.format(n=n)}]


_MARK = "@@N@@"


def _chat_body(n: int) -> bytes:
    return json.dumps(
        {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": f"{ANSWER} ({n})", "refusal": None},
                }
            ],
            "usage": {"prompt_tokens": 96, "completion_tokens": 88, "total_tokens": 184},
        }
    ).encode()


def _pieces(n: int, count: int) -> list[str]:
    """ANSWER in ``count`` streamed text pieces (the call's number pads short answers)."""
    words = ANSWER.split(" ")
    step = max(1, math.ceil(len(words) / max(1, count)))
    pieces = [" ".join(words[i : i + step]) + " " for i in range(0, len(words), step)][:count]
    return pieces + [f"({n}) "] * (count - len(pieces))


def _sse_body(n: int, chunks: int) -> bytes:
    """``chunks`` SSE events: a role chunk, content chunks, a finish chunk; then [DONE]."""
    pieces = _pieces(n, chunks - 2)
    base = {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
    }
    deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
    events = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return (
        b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    )


def openai_client(*, stream: bool, asynchronous: bool = False, chunks: int = 50) -> Any:
    """An ``openai.OpenAI`` (or ``AsyncOpenAI``) whose every request gets a canned answer."""
    import openai

    # built once; each answer differs only by its number, so building it costs ~nothing
    template = _sse_body(_MARK, chunks) if stream else _chat_body(_MARK)  # type: ignore[arg-type]
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(
        http_client=_mock_http(template, stream, asynchronous),
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
    )


def anthropic_messages(n: int) -> tuple[str, list[dict[str, str]]]:
    """The same conversation as ``messages`` in Anthropic's shape: (system, messages)."""
    system, *rest = messages(n)
    return system["content"], rest


def _anthropic_message(
    n: int, content: list[Any], stop: str | None, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": f"msg_{n}",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 96,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _anthropic_body(n: int) -> bytes:
    return json.dumps(
        _anthropic_message(n, [{"type": "text", "text": f"{ANSWER} ({n})"}], "end_turn", 88)
    ).encode()


def _anthropic_sse_body(n: int, chunks: int) -> bytes:
    """``chunks`` SSE events: message and block start, text deltas, block stop, message delta and stop."""
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": _anthropic_message(n, [], None, 1)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in _pieces(n, chunks - 5)
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 88},
        },
        {"type": "message_stop"},
    ]
    return b"".join(
        f"event: {e['type']}\ndata: ".encode() + json.dumps(e).encode() + b"\n\n" for e in events
    )


def anthropic_client(*, stream: bool, asynchronous: bool = False, chunks: int = 50) -> Any:
    """An ``anthropic.Anthropic`` (or ``AsyncAnthropic``) whose every request gets a canned answer."""
    import anthropic

    template = _anthropic_sse_body(_MARK, chunks) if stream else _anthropic_body(_MARK)  # type: ignore[arg-type]
    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return cls(
        http_client=_mock_http(template, stream, asynchronous),
        api_key="sk-bench",
        base_url="https://api.anthropic.com",
        max_retries=0,
    )


def _mock_http(template: bytes, stream: bool, asynchronous: bool) -> Any:
    """An httpx2 client answering every request with ``template``, its number mark replaced
    by a counter."""
    import httpx2

    counter = itertools.count()
    mark = _MARK.encode()
    ctype = "text/event-stream" if stream else "application/json"

    def handler(request: Any) -> Any:
        body = template.replace(mark, str(next(counter)).encode())
        return httpx2.Response(200, headers={"content-type": ctype}, content=body)

    transport = httpx2.MockTransport(handler)
    return (
        httpx2.AsyncClient(transport=transport)
        if asynchronous
        else httpx2.Client(transport=transport)
    )


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
