"""Every attribute, event and metric name frictionlens emits, in one place.

GenAI names follow the OpenTelemetry GenAI semantic conventions as maintained in
``open-telemetry/semantic-conventions-genai`` (status: Development), checked against the
names shipped by ``opentelemetry-semantic-conventions`` 0.66b2. Names marked *brief* are
frictionlens' own choice where the conventions are silent or still moving.

Our own names live under ``frictionlens.``; the fixed ones are the telemetry contract of
DESIGN.md and must not be renamed.
"""

from __future__ import annotations

# --- GenAI semantic conventions: span attributes ---------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
USER_ID = "user.id"

# gen_ai.operation.name values
OP_CHAT = "chat"
OP_TEXT_COMPLETION = "text_completion"
OP_EMBEDDINGS = "embeddings"
OP_GENERATE_CONTENT = "generate_content"
OP_INVOKE_AGENT = "invoke_agent"
OP_EXECUTE_TOOL = "execute_tool"
#: operations that produce model output (LLM calls); the stages count these as steps
LLM_OPERATIONS = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_GENERATE_CONTENT})

# gen_ai.output.type values
OUTPUT_TYPE_TEXT = "text"
OUTPUT_TYPE_JSON = "json"

# --- GenAI semantic conventions: events and metrics ------------------------------------
GEN_AI_EVALUATION_RESULT = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"

METRIC_GEN_AI_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_GEN_AI_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_GEN_AI_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
# brief: the newer names, used when OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental
METRIC_GEN_AI_INFERENCE_OPERATION_DURATION = "gen_ai.client.inference.operation.duration"
METRIC_GEN_AI_INFERENCE_TOKEN_USAGE = "gen_ai.client.inference.token.usage"
SEMCONV_OPT_IN_ENV = "OTEL_SEMCONV_STABILITY_OPT_IN"
SEMCONV_OPT_IN_LATEST = "gen_ai_latest_experimental"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

#: advised explicit bucket boundaries (conventions: gen_ai.client.* metrics)
DURATION_BUCKETS_S = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)

# --- frictionlens: per-call attributes (fixed by DESIGN.md) ----------------------------
OUTPUT_CHARS = "frictionlens.output.chars"
OUTPUT_FORMAT_EXPECTED = "frictionlens.output.format.expected"
OUTPUT_FORMAT_VALID = "frictionlens.output.format.valid"
OUTPUT_FORMAT_ERROR = "frictionlens.output.format.error"
OUTPUT_PREAMBLE = "frictionlens.output.preamble"
OUTPUT_CODE_FENCE = "frictionlens.output.code_fence"  # brief: output wrapped in ``` fences
OUTPUT_REFUSAL = "frictionlens.output.refusal"
OUTPUT_TRUNCATED = "frictionlens.output.truncated"
RETRY_COUNT = "frictionlens.retry.count"
STREAM_ABANDONED = "frictionlens.stream.abandoned"
STREAM_CHUNKS = "frictionlens.stream.chunks"  # brief: chunks delivered to the caller
ROUTE = "frictionlens.route"
CONVERSATION_ID = "frictionlens.conversation.id"
CONVERSATION_TURN = "frictionlens.conversation.turn"
FRICTION_KIND = "frictionlens.friction.kind"
FRICTION_CATEGORY = "frictionlens.friction.category"
FRICTION_SCORE = "frictionlens.friction.score"
REVIEW_NEEDED = "frictionlens.review.needed"
REVIEW_REASON = "frictionlens.review.reason"

# frictionlens.output.format.expected values
FORMAT_TEXT = "text"
FORMAT_JSON = "json"
FORMAT_JSON_SCHEMA = "json_schema"
FORMAT_TOOL_CALL = "tool_call"
# frictionlens.output.format.error values
FORMAT_ERROR_JSON_DECODE = "json_decode"
FORMAT_ERROR_SCHEMA = "schema"
FORMAT_ERROR_CODE_FENCE = "code_fence"
FORMAT_ERROR_PREAMBLE = "preamble"
FORMAT_ERROR_EMPTY = "empty"

# --- frictionlens: trajectory (task root spans) ----------------------------------------
TRAJECTORY_STEPS = "frictionlens.trajectory.steps"
TRAJECTORY_TOOL_CALLS = "frictionlens.trajectory.tool_calls"
TRAJECTORY_TOOL_ERRORS = "frictionlens.trajectory.tool_errors"
TRAJECTORY_REDUNDANT_CALLS = "frictionlens.trajectory.redundant_calls"
TRAJECTORY_LOOPS = "frictionlens.trajectory.loops"
TRAJECTORY_EXPECTED_STEPS = "frictionlens.trajectory.expected_steps"
TRAJECTORY_EFFICIENCY = "frictionlens.trajectory.efficiency"
TRAJECTORY_OUTCOME = "frictionlens.trajectory.outcome"
TRAJECTORY_BRUTE_FORCE = "frictionlens.trajectory.brute_force"

# --- frictionlens: drift event ----------------------------------------------------------
DRIFT_EVENT = "frictionlens.drift"
DRIFT_FEATURE = "frictionlens.drift.feature"
DRIFT_STATISTIC = "frictionlens.drift.statistic"
DRIFT_VALUE = "frictionlens.drift.value"
DRIFT_THRESHOLD = "frictionlens.drift.threshold"
DRIFT_STREAM = "frictionlens.drift.stream"
DRIFT_SUSPECTED_CAUSE = "frictionlens.drift.suspected_cause"

# --- frictionlens: summary span and evaluation names -----------------------------------
CONVERSATION_SPAN = "frictionlens.conversation"
EVALUATION_FRICTION = "frictionlens.friction"
EVALUATION_TRAJECTORY = "frictionlens.trajectory"

# --- frictionlens: metrics (fixed by DESIGN.md) -----------------------------------------
METRIC_FRICTION_EVENTS = "frictionlens.friction.events"
METRIC_CONVERSATIONS = "frictionlens.conversations"
METRIC_OUTPUT_LENGTH = "frictionlens.output.length"
METRIC_FORMAT_FAILURES = "frictionlens.format.failures"
METRIC_RETRIES = "frictionlens.retries"
METRIC_DRIFT_SCORE = "frictionlens.drift.score"
METRIC_DRIFT_ALERTS = "frictionlens.drift.alerts"
METRIC_TRAJECTORY_STEPS = "frictionlens.trajectory.steps"
METRIC_TRAJECTORY_EFFICIENCY = "frictionlens.trajectory.efficiency"
METRIC_TRAJECTORY_OUTCOMES = "frictionlens.trajectory.outcomes"
METRIC_INTERNAL_ERRORS = "frictionlens.internal.errors"  # brief: our own caught failures

#: bucket boundaries for frictionlens.output.length (characters)
OUTPUT_LENGTH_BUCKETS = (0, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536, 262144)

# low-cardinality metric attribute keys
METRIC_ATTR_STREAM = "stream"
METRIC_ATTR_KIND = "kind"
METRIC_ATTR_CATEGORY = "category"
METRIC_ATTR_PROVIDER = "provider"
METRIC_ATTR_MODEL = "model"
METRIC_ATTR_ERROR = "error"
METRIC_ATTR_FEATURE = "feature"
METRIC_ATTR_OUTCOME = "outcome"
METRIC_ATTR_REVIEW_NEEDED = "review_needed"
METRIC_ATTR_TASK = "task"
METRIC_ATTR_COMPONENT = "component"

# --- instrumentation scope --------------------------------------------------------------
SCOPE_NAME = "frictionlens"
