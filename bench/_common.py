"""Shared by the benches: OpenAI clients over an in-process mock transport, and statistics.

The openai SDK (3.x) talks through ``httpx2``; a ``MockTransport`` answers in-process, so a
bench measures the SDK plus whatever wraps it, never the network.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Sequence

MODEL = "gpt-4o-mini"
ANSWER = (
    "To rotate the logs daily, add a logrotate rule for the service: set `daily`, keep seven "
    "files with `rotate 7`, compress the old ones with `compress` and `delaycompress`, and use "
    "`copytruncate` so the process keeps its file handle. Test the rule with `logrotate -d` "
    "before relying on it, then check the next morning that yesterday's file was compressed "
    "and that the service is still writing to the live log without a restart."
)
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "You are a concise assistant for a Linux operations team. "
     "Answer with the exact commands or configuration needed, explain each step in one short "
     "sentence, and say so plainly when you are not sure rather than guessing."},
    {"role": "user", "content": "How do I keep the logs of my service from filling the disk?"},
    {"role": "assistant", "content": "Use logrotate, or journald limits if the service logs to the journal."},
]
QUESTION = "It writes to /var/log/app/app.log itself; how do I rotate that file every day? (#{n})"


def messages(n: int) -> list[dict[str, str]]:
    """A two-turn conversation whose last user message differs per call (no cache hits)."""
    return [*MESSAGES, {"role": "user", "content": QUESTION.format(n=n)}]


_MARK = "@@N@@"


def _chat_body(n: int) -> bytes:
    return json.dumps({
        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": f"{ANSWER} ({n})", "refusal": None}}],
        "usage": {"prompt_tokens": 96, "completion_tokens": 88, "total_tokens": 184},
    }).encode()


def _sse_body(n: int, chunks: int) -> bytes:
    """``chunks`` SSE events: a role chunk, content chunks, a finish chunk; then [DONE]."""
    words = ANSWER.split(" ")
    step = max(1, math.ceil(len(words) / max(1, chunks - 2)))
    pieces = [" ".join(words[i:i + step]) + " " for i in range(0, len(words), step)][: chunks - 2]
    pieces += [f"({n}) "] * (chunks - 2 - len(pieces))
    base = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": 1700000000,
            "model": MODEL, "system_fingerprint": "fp_bench"}
    deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
    events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def openai_client(*, stream: bool, asynchronous: bool = False, chunks: int = 50) -> Any:
    """An ``openai.OpenAI`` (or ``AsyncOpenAI``) whose every request gets a canned answer."""
    import httpx2
    import openai

    counter = itertools.count()
    # built once; each answer differs only by its number, so building it costs ~nothing
    template = _sse_body(_MARK, chunks) if stream else _chat_body(_MARK)  # type: ignore[arg-type]
    mark = _MARK.encode()
    ctype = "text/event-stream" if stream else "application/json"

    def handler(request: Any) -> Any:
        body = template.replace(mark, str(next(counter)).encode())
        return httpx2.Response(200, headers={"content-type": ctype}, content=body)

    transport = httpx2.MockTransport(handler)
    common = {"api_key": "sk-bench", "base_url": "https://api.openai.com/v1", "max_retries": 0}
    if asynchronous:
        return openai.AsyncOpenAI(http_client=httpx2.AsyncClient(transport=transport), **common)
    return openai.OpenAI(http_client=httpx2.Client(transport=transport), **common)


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
