"""Names other GenAI instrumentations put on their spans: read by the normalizer, never emitted.

``processors/normalize.py`` maps spans made by the official OpenTelemetry instrumentation,
Traceloop's OpenLLMetry and OpenInference to the names in ``semconv`` (which holds every name
frictionlens emits), so the signal stages read one vocabulary. Checked against
opentelemetry-instrumentation-openai-v2 2.4b0 with opentelemetry-util-genai 1.1b0,
opentelemetry-instrumentation-openai (Traceloop) 0.62.4 and openinference-instrumentation-openai
0.1.66; the ``LEGACY_`` names are earlier GenAI-convention and Traceloop releases. Names the
we emit as well (the current ``gen_ai.*`` ones, ``exception.*``) are in ``semconv``, once.
"""

from __future__ import annotations

# earlier GenAI-convention releases
LEGACY_GEN_AI_SYSTEM = "gen_ai.system"  # became gen_ai.provider.name
LEGACY_GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # became gen_ai.usage.input_tokens
LEGACY_GEN_AI_USAGE_COMPLETION_TOKENS = (
    "gen_ai.usage.completion_tokens"  # became gen_ai.usage.output_tokens
)
LEGACY_OPENAI_SYSTEM_FINGERPRINT = "gen_ai.openai.system_fingerprint"
# Traceloop OpenLLMetry
TRACELOOP_REQUEST_TYPE = "llm.request.type"
TRACELOOP_SYSTEM_FINGERPRINT = "gen_ai.openai.response.system_fingerprint"
TRACELOOP_API_BASE = "gen_ai.openai.api_base"
TRACELOOP_IS_STREAMING = "gen_ai.is_streaming"
LEGACY_TRACELOOP_IS_STREAMING = "llm.is_streaming"
TRACELOOP_STRUCTURED_OUTPUT_SCHEMA = "gen_ai.request.structured_output_schema"
TRACELOOP_PROMPT_PREFIX = "gen_ai.prompt."  # gen_ai.prompt.N.role / .content
TRACELOOP_COMPLETION_PREFIX = (
    "gen_ai.completion."  # gen_ai.completion.N.content / .finish_reason / .tool_calls.M.*
)
# OpenInference
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
OPENINFERENCE_COMPLETION_SPAN = "Completion"  # span name of a legacy completions call
OPENINFERENCE_LLM_PROVIDER = "llm.provider"
OPENINFERENCE_LLM_SYSTEM = "llm.system"
OPENINFERENCE_MODEL_NAME = "llm.model_name"
OPENINFERENCE_INVOCATION_PARAMETERS = "llm.invocation_parameters"
OPENINFERENCE_TOKENS_PROMPT = "llm.token_count.prompt"
OPENINFERENCE_TOKENS_COMPLETION = "llm.token_count.completion"
OPENINFERENCE_TOKENS_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OPENINFERENCE_FINISH_REASON = "llm.finish_reason"
OPENINFERENCE_SESSION_ID = "session.id"
OPENINFERENCE_OUTPUT_VALUE = "output.value"
OPENINFERENCE_OUTPUT_MIME_TYPE = "output.mime_type"
OPENINFERENCE_INPUT_MESSAGES = (
    "llm.input_messages."  # .N.message.role / .content / .contents.M.* / .tool_calls.M.*
)
OPENINFERENCE_OUTPUT_MESSAGES = "llm.output_messages."
# span events that carry content or stream timing
PEER_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
PEER_CHOICE_EVENT = "gen_ai.choice"
PEER_FIRST_CHUNK_EVENTS = frozenset({"First Token Stream Event", "gen_ai.content.completion.chunk"})
