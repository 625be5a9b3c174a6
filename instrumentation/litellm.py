"""LiteLLM instrumentation: ``completion``, ``acompletion``, and the legacy ``text_completion``
and ``atext_completion`` (streams too).

One span per LiteLLM call, whichever provider it routes to: LiteLLM answers in the OpenAI
chat shape, so the OpenAI reader records it. Current LiteLLM posts through the ``openai``
client's low-level request method, which our OpenAI wrapper does not see; a route that calls
``chat.completions.create`` itself (older LiteLLM releases, custom providers) runs inside our
invocation and is left alone by the re-entrancy guard (``calls.begin``). Either way the trace
has exactly one GenAI span per call. ``litellm`` is slow to import, so nothing is imported
here: the wrappers go in when the app imports ``litellm`` (a post-import hook).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from frictionlens import semconv
from frictionlens.features.invocation import LLMInvocation
from frictionlens.instrumentation import calls
from frictionlens.instrumentation import openai as oai
from frictionlens.instrumentation.calls import CallSpec

#: LiteLLM's provider prefix -> gen_ai.provider.name (the conventions' well-known values)
PROVIDER_BY_PREFIX = {
    "anthropic": "anthropic",
    "azure": semconv.PROVIDER_AZURE_OPENAI,
    "groq": semconv.PROVIDER_GROQ,
    "deepseek": semconv.PROVIDER_DEEPSEEK,
    "mistral": semconv.PROVIDER_MISTRAL,
    "xai": semconv.PROVIDER_X_AI,
    "perplexity": semconv.PROVIDER_PERPLEXITY,
    "gemini": semconv.PROVIDER_GEMINI,
    "openrouter": semconv.PROVIDER_OPENROUTER,
    "ollama": semconv.PROVIDER_OLLAMA,
    "ollama_chat": semconv.PROVIDER_OLLAMA,
}
_WRAPPED = (
    ("litellm", "completion"),
    ("litellm", "acompletion"),
    ("litellm", "text_completion"),
    ("litellm", "atext_completion"),
)


def _request(kind: str, kwargs: Mapping[str, Any]) -> LLMInvocation:
    inv = oai.read_request(kind, None, kwargs)  # the OpenAI parameters, read the same way
    model = str(kwargs.get("model") or "")
    prefix, _, name = model.partition("/")
    base = kwargs.get("api_base") or kwargs.get("base_url")
    parts = urlsplit(base) if isinstance(base, str) else None
    inv.server_address = parts.hostname if parts else None
    inv.server_port = parts.port if parts else None
    if name and prefix in PROVIDER_BY_PREFIX:
        inv.provider = PROVIDER_BY_PREFIX[prefix]
    else:  # "openai/..." or a bare model name: an OpenAI-compatible server, told by its host
        inv.provider = oai.provider_for(inv.server_address, inv.server_port)
    if name:
        inv.request_model = name
    return inv


def _spec(kind: str, response: Any, chunk: Any, positional: tuple[str, ...]) -> CallSpec:
    return CallSpec(
        semconv.PROVIDER_OPENAI,
        lambda instance, kwargs: _request(kind, kwargs),
        response,
        chunk,
        positional=positional,
    )


SPEC = _spec("chat", oai.read_chat_response, oai.read_chat_chunk, ("model", "messages"))
TEXT_SPEC = _spec(
    "completions", oai.read_completion_response, oai.read_completion_chunk, ("prompt", "model")
)


class LiteLLMInstrumentor(BaseInstrumentor):
    """Instruments ``litellm``. Usually installed by ``frictionlens.instrument()``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("litellm >= 1.53.1",)

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = calls.telemetry_from(kwargs)
        self._active = True
        wrappers = {
            "completion": calls.sync_wrapper(SPEC, telemetry),
            "acompletion": calls.async_wrapper(SPEC, telemetry),
            "text_completion": calls.sync_wrapper(TEXT_SPEC, telemetry),
            "atext_completion": calls.async_wrapper(TEXT_SPEC, telemetry),
        }

        def on_import(module: Any) -> None:
            if self._active:
                calls.wrap_all([(m, n, wrappers[n]) for m, n in _WRAPPED], "litellm")

        wrapt.register_post_import_hook(on_import, "litellm")

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False  # a hook still waiting for the import does nothing
        if "litellm" in sys.modules:
            calls.unwrap_all(_WRAPPED)
