"""What the local server receives (``ReceivedRequest``) and what it is told to answer (``Reply``).

A ``Reply`` is provider-neutral: the same scripted reply is rendered in the OpenAI Chat
Completions, OpenAI Responses or Anthropic Messages wire format depending on the path it
answers, so one script drives every SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
RESPONSES_PATH = "/v1/responses"
EMBEDDINGS_PATH = "/v1/embeddings"
MESSAGES_PATH = "/v1/messages"


@dataclass(frozen=True)
class Usage:
    """Token counts, reported verbatim in the provider's usage fields.

    ``input_tokens`` is the provider's own input figure: OpenAI's ``prompt_tokens`` (which
    includes cached tokens, reported again as ``cached_tokens``), Anthropic's ``input_tokens``
    (which excludes the two cache counts).
    """

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True)
class Reply:
    """One scripted answer; every field is optional.

    ``content`` is the assistant text, or one text per choice (``n>1``; for Anthropic and
    Responses, one text block / output part each). ``tool_calls`` are ``(name, arguments)``
    pairs whose arguments are JSON text (sent as given, so invalid JSON is possible).
    ``finish_reason`` takes either vocabulary (``stop``/``end_turn``, ``length``/``max_tokens``,
    ``tool_calls``/``tool_use``, ``content_filter``/``refusal``) and is translated to the
    answering format; other values pass through verbatim. Unset, it follows from the reply
    (tool calls, refusal, or a normal stop). ``usage=None`` estimates about 4 characters a token.

    ``status >= 400`` answers with ``error`` (a message, or a whole JSON body) in the
    provider's error format. ``raw_body`` is sent as-is (content type ``application/json``
    unless ``headers`` says otherwise), for malformed JSON or non-UTF-8 bytes. ``headers``
    are added to (and override) the response headers. Note: both SDKs treat ``retry-after: 0``
    as absent and back off about 0.5 s; ``{"retry-after-ms": "1"}`` retries at once.

    Streams: ``stream_chunks`` splits each text into that many pieces (default: one piece a
    word); ``chunk_delay_s`` sleeps between SSE events; ``truncate_stream_after=N`` stops after
    N SSE events without the stream's terminator and drops the connection mid-body, or,
    with ``truncate_cleanly=True``, ends the HTTP body properly (a stream that just stops).
    ``delay_s`` sleeps before the status line.
    """

    status: int = 200
    content: str | Sequence[str] = ""
    tool_calls: Sequence[tuple[str, str]] = ()
    refusal: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    system_fingerprint: str | None = "fp_local"
    usage: Usage | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | Mapping[str, Any] | None = None
    raw_body: bytes | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    stream_chunks: int | None = None
    truncate_stream_after: int | None = None
    truncate_cleanly: bool = False

    @property
    def texts(self) -> list[str]:
        """The content as a list, one entry per choice."""
        return [self.content] if isinstance(self.content, str) else list(self.content)


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as the server saw it."""

    index: int
    """0-based arrival order since the server started (or was reset)."""
    method: str
    path: str
    """Without the query string, e.g. ``/v1/chat/completions``."""
    headers: Mapping[str, str]
    """Lower-cased names."""
    raw: bytes
    body: Any
    """The parsed JSON body, or None when the body is not JSON."""
    client_port: int = 0
    """The client's TCP port: equal ports mean the SDK reused a pooled connection."""

    @property
    def json(self) -> dict[str, Any]:
        """The body when it is a JSON object, else an empty dict (never raises)."""
        return self.body if isinstance(self.body, dict) else {}

    @property
    def provider(self) -> str:
        """``anthropic`` for the Messages API, ``openai`` otherwise."""
        return "anthropic" if self.path == MESSAGES_PATH else "openai"

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream"))

    @property
    def retry_count(self) -> int:
        """The SDK's own ``x-stainless-retry-count`` header (0 on a first attempt)."""
        try:
            return int(self.headers.get("x-stainless-retry-count", "0"))
        except ValueError:
            return 0


Responder = Callable[[ReceivedRequest], Reply]
"""Decides the reply for a request when no scripted reply is pending."""
