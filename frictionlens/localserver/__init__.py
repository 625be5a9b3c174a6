"""A local HTTP server speaking the OpenAI and Anthropic wire formats, with scripted behaviour.

It is the real peer for tests, benches, examples and ``frictionlens demo``: the real SDKs talk
to it over real HTTP (keep-alive, retries, SSE), so their behaviour is the production one::

    from frictionlens.localserver import LocalLLMServer, Reply

    with LocalLLMServer() as server:
        server.script(Reply(status=429, headers={"retry-after-ms": "1"}), Reply(content="hi"))
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="local")
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert len(server.requests) == 2

Endpoints: ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings`` (OpenAI) and
``/v1/messages`` (Anthropic), each streaming when the request asks for it.
"""

from frictionlens.localserver.reply import ReceivedRequest, Reply, Responder, Usage
from frictionlens.localserver.responder import (
    answer_text,
    default_responder,
    example_for_schema,
    last_user_text,
)
from frictionlens.localserver.server import LocalLLMServer
from frictionlens.localserver.wire import embedding_vector

__all__ = [
    "LocalLLMServer",
    "ReceivedRequest",
    "Reply",
    "Responder",
    "Usage",
    "answer_text",
    "default_responder",
    "embedding_vector",
    "example_for_schema",
    "last_user_text",
]
