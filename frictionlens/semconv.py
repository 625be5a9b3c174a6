"""Every attribute, event and metric name frictionlens emits, in one place: the telemetry contract.

This module is where the contract lives. The names here are what the report, the generated
alert rules (``exporters/rules.py``), the dashboard in ``examples/observability``, the collector
and every store already written read back, so none is ever renamed; new ones are added freely,
here and nowhere else. Sections marked *fixed* hold the names the project started with; names
marked *brief* are later choices of ours where the conventions are silent or still moving.

GenAI names follow the OpenTelemetry GenAI semantic conventions as maintained in
``open-telemetry/semantic-conventions-genai`` (status: Development), checked against the
names shipped by ``opentelemetry-semantic-conventions`` 0.66b2. Our own names live under
``frictionlens.``. Names that other instrumentations put on their spans, which the normalizer
only reads, are in ``semconv_peers``.
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
# OpenTelemetry exception conventions (our spans emit them, the normalizer reads peers'); without
# content capture only the type is recorded (messages and tracebacks can quote prompts and
# completions)
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"

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
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)

# --- frictionlens: per-call attributes (fixed) -------------------------------------------
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

# --- frictionlens: drift event ----------------------------------------------------------
DRIFT_EVENT = "frictionlens.drift"
DRIFT_FEATURE = "frictionlens.drift.feature"
DRIFT_STATISTIC = "frictionlens.drift.statistic"
DRIFT_VALUE = "frictionlens.drift.value"
DRIFT_THRESHOLD = "frictionlens.drift.threshold"
DRIFT_STREAM = "frictionlens.drift.stream"
DRIFT_SUSPECTED_CAUSE = "frictionlens.drift.suspected_cause"
#: what changed: a content feature, a timing feature, or the provider's model / fingerprint
DRIFT_KIND = "frictionlens.drift.kind"
DRIFT_KIND_CONTENT = "content"
DRIFT_KIND_PERFORMANCE = "performance"  # latency, time to first chunk, tokens per second
DRIFT_KIND_PROVIDER = "provider"
#: the features of the alert this event belongs to (alarms close together are one alert)
DRIFT_FEATURES = "frictionlens.drift.features"
#: bool: this event opened an alert (counted in frictionlens.drift.alerts); false when the
#: alarm joined an alert raised a few calls before
DRIFT_ALERT = "frictionlens.drift.alert"

# --- frictionlens: summary span and evaluation names -----------------------------------
CONVERSATION_SPAN = "frictionlens.conversation"
EVALUATION_FRICTION = "frictionlens.friction"
EVALUATION_TRAJECTORY = "frictionlens.trajectory"

# --- frictionlens: metrics (fixed; trajectory metrics are in the trajectory section) ----
METRIC_FRICTION_EVENTS = "frictionlens.friction.events"
METRIC_CONVERSATIONS = "frictionlens.conversations"
METRIC_OUTPUT_LENGTH = "frictionlens.output.length"
METRIC_FORMAT_FAILURES = "frictionlens.format.failures"
METRIC_RETRIES = "frictionlens.retries"
METRIC_DRIFT_SCORE = "frictionlens.drift.score"
METRIC_DRIFT_ALERTS = "frictionlens.drift.alerts"
METRIC_INTERNAL_ERRORS = "frictionlens.internal.errors"  # brief: our own caught failures
#: an observable gauge that reports nothing: its callback hands batched counter sums to the
#: SDK when a metric reader collects (processors/meter.py)
METRIC_INTERNAL_COUNTER_FLUSH = "frictionlens.internal.counter_flush"

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

# --- frictionlens: trajectory (task root spans; fixed, then brief) ----------------------
TRAJECTORY_STEPS = "frictionlens.trajectory.steps"
TRAJECTORY_TOOL_CALLS = "frictionlens.trajectory.tool_calls"
TRAJECTORY_TOOL_ERRORS = "frictionlens.trajectory.tool_errors"
TRAJECTORY_REDUNDANT_CALLS = "frictionlens.trajectory.redundant_calls"
TRAJECTORY_LOOPS = "frictionlens.trajectory.loops"
TRAJECTORY_EXPECTED_STEPS = "frictionlens.trajectory.expected_steps"
TRAJECTORY_EFFICIENCY = "frictionlens.trajectory.efficiency"
TRAJECTORY_OUTCOME = "frictionlens.trajectory.outcome"
TRAJECTORY_BRUTE_FORCE = "frictionlens.trajectory.brute_force"
TRAJECTORY_TASK = (
    "frictionlens.trajectory.task"  # brief: agent name, or the implicit root's span name
)
TRAJECTORY_BUDGET_SOURCE = "frictionlens.trajectory.budget_source"  # brief: declared | learned
TRAJECTORY_INPUT_TOKENS = (
    "frictionlens.trajectory.input_tokens"  # brief: summed over the task's LLM calls
)
TRAJECTORY_OUTPUT_TOKENS = "frictionlens.trajectory.output_tokens"
TRAJECTORY_DURATION = "frictionlens.trajectory.duration"  # brief: seconds, root start to end
TRAJECTORY_STEP_SUCCESS_RATE = (
    "frictionlens.trajectory.step_success_rate"  # brief: recent, per task name
)
TRAJECTORY_TASK_SUCCESS_RATE = (
    "frictionlens.trajectory.task_success_rate"  # brief: recent, end to end
)
TRAJECTORY_COMPOUNDING = (
    "frictionlens.trajectory.compounding"  # brief: bool, see processors/trajectory
)

# frictionlens.trajectory.outcome values, budget sources, evaluation label
TRAJECTORY_OUTCOME_SUCCESS = "success"
TRAJECTORY_OUTCOME_FAILURE = "failure"
TRAJECTORY_OUTCOME_ABANDONED = "abandoned"
TRAJECTORY_OUTCOME_UNKNOWN = "unknown"
TRAJECTORY_BUDGET_DECLARED = "declared"
TRAJECTORY_BUDGET_LEARNED = "learned"
TRAJECTORY_LABEL_BRUTE_FORCE = "brute_force"
#: error.type of a task failed without a reason (the conventions' fallback value)
ERROR_TYPE_OTHER = "_OTHER"

# metrics: the fixed three, then the brief ones; the conventions' agent-grain counts
# (semantic-conventions-genai, gen-ai-metrics.md: no double count of nested agents)
METRIC_TRAJECTORY_STEPS = "frictionlens.trajectory.steps"
METRIC_TRAJECTORY_EFFICIENCY = "frictionlens.trajectory.efficiency"
METRIC_TRAJECTORY_OUTCOMES = "frictionlens.trajectory.outcomes"
METRIC_GEN_AI_INVOKE_AGENT_INFERENCE_CALLS = "gen_ai.invoke_agent.inference_calls"
METRIC_GEN_AI_INVOKE_AGENT_TOOL_CALLS = "gen_ai.invoke_agent.tool_calls"
METRIC_TRAJECTORY_STEP_SUCCESS_RATE = "frictionlens.trajectory.step_success_rate"
METRIC_TRAJECTORY_TASK_SUCCESS_RATE = "frictionlens.trajectory.task_success_rate"
#: brief: low-cardinality attribute of frictionlens.trajectory.outcomes ("true" / "false")
METRIC_ATTR_BRUTE_FORCE = "brute_force"
#: bucket boundaries for step / call counts per task and for efficiency (budget / steps)
TRAJECTORY_STEP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 50, 64, 100)
TRAJECTORY_EFFICIENCY_BUCKETS = (
    0.1,
    0.2,
    0.25,
    0.33,
    0.5,
    0.67,
    0.8,
    0.9,
    1.0,
    1.25,
    1.5,
    2.0,
    4.0,
)

# --- friction: kinds, categories, conversation summary, feedback, sampling ---------------
# frictionlens.friction.kind values (fixed) plus ``silence`` (a conversation that stops
# right after friction; found when it ends, reported on its summary span)
FRICTION_RETRY = "retry"
FRICTION_REGENERATE = "regenerate"
FRICTION_EDIT = "edit"
FRICTION_REPHRASE = "rephrase"
FRICTION_CORRECTION = "correction"
FRICTION_NEGATIVE_FEEDBACK = "negative_feedback"
FRICTION_REPEAT = "repeat"
FRICTION_LOOP = "loop"
FRICTION_STREAM_ABANDON = "stream_abandon"
FRICTION_GIVE_UP = "give_up"
FRICTION_SILENCE = "silence"  # brief
# frictionlens.friction.category values
CATEGORY_MISALIGNMENT = "misalignment"
CATEGORY_STAGNATION = "stagnation"
CATEGORY_DISENGAGEMENT = "disengagement"
#: bool on a call: its answer failed the request (an apology, "no results", an offer of
#: something else, a definition or generic text sharing almost nothing with it;
#: frictionlens/features/answer.py). A restatement right after one is misalignment at a
#: lower similarity. Brief
OUTPUT_NON_ANSWER = "frictionlens.output.non_answer"

# summary span (CONVERSATION_SPAN) attributes; all brief
CONVERSATION_TURNS = "frictionlens.conversation.turns"
CONVERSATION_CALLS = "frictionlens.conversation.calls"
CONVERSATION_OUTCOME = "frictionlens.conversation.outcome"
CONVERSATION_END_REASON = "frictionlens.conversation.end_reason"
CONVERSATION_FEEDBACK_POSITIVE = "frictionlens.conversation.feedback.positive"
#: + kind: friction findings of that kind in the conversation
CONVERSATION_FRICTION_PREFIX = "frictionlens.conversation.friction."
# frictionlens.conversation.outcome values
CONVERSATION_OUTCOME_SMOOTH = "smooth"  # no friction
CONVERSATION_OUTCOME_RECOVERED = "recovered"  # friction, then friction-free turns or an open end
CONVERSATION_OUTCOME_ABANDONED = "abandoned"  # ended in disengagement
# frictionlens.conversation.end_reason values
CONVERSATION_END_IDLE = "idle"
CONVERSATION_END_SHUTDOWN = "shutdown"
CONVERSATION_END_EVICTED = "evicted"

# frictionlens.feedback(): one small span per call; all brief
FEEDBACK_SPAN = "frictionlens.feedback"
FEEDBACK_KIND = "frictionlens.feedback.kind"
FEEDBACK_VALUE = "frictionlens.feedback.value"
FEEDBACK_CONVERSATION_ID = "frictionlens.feedback.conversation_id"
FEEDBACK_RESPONSE_ID = "frictionlens.feedback.response_id"
# frictionlens.feedback.kind values
FEEDBACK_THUMBS_DOWN = "thumbs_down"
FEEDBACK_THUMBS_UP = "thumbs_up"
FEEDBACK_COPY = "copy"
FEEDBACK_EDIT = "edit"
FEEDBACK_REGENERATE = "regenerate"
FEEDBACK_ABANDON = "abandon"
FEEDBACK_RATING = "rating"

# signal-based sampling (exporters/sampling.py); all brief
METRIC_SAMPLING_SPANS = "frictionlens.sampling.spans"
METRIC_ATTR_DECISION = "decision"
SAMPLING_KEPT_FLAGGED = "kept_flagged"  # span of a flagged trace / conversation, passed at once
SAMPLING_KEPT_SUMMARY = "kept_summary"  # conversation summary span: always kept
SAMPLING_KEPT_SAMPLED = "kept_sampled"  # held span of a trace inside the sampled fraction
SAMPLING_RELEASED = "released"  # buffered span released when its trace / conversation got flagged
SAMPLING_DROPPED = "dropped"  # held span outside the sampled fraction, never flagged
SAMPLING_DROPPED_OVERFLOW = "dropped_overflow"  # the same, decided early: buffer full
# OpenTelemetry consistent probability sampling ("TraceState: Probability Sampling", status
# Development): the sampling threshold goes in the `th` sub-key of the `ot` tracestate entry
TRACESTATE_OT = "ot"
TRACESTATE_THRESHOLD = "th"
TRACESTATE_RANDOMNESS = "rv"

# --- drift: suspected causes (frictionlens.drift.suspected_cause values) -----------------
# The stream name also goes on every LLM call span, under DRIFT_STREAM: `frictionlens.stream`
# is taken as a namespace (frictionlens.stream.abandoned), and a name cannot be both.
DRIFT_CAUSE_PROVIDER_CHANGE = (
    "provider_change"  # response model or fingerprint changed in the window
)
DRIFT_CAUSE_PROMPT_CHANGE = "prompt_change"  # the route's system prompt hash changed in the window
DRIFT_CAUSE_TRAFFIC_OR_UNKNOWN = "traffic_or_unknown"

# --- trace viewers ---------------------------------------------------------------------------
#: resource attribute (OpenInference) naming the Arize Phoenix project that receives the spans;
#: Phoenix ignores service.name for this and files spans without it under ``default``
OPENINFERENCE_PROJECT_NAME = "openinference.project.name"
# --- Prometheus endpoint (config.py) -------------------------------------------------------
# standard OpenTelemetry SDK variables honoured for the Prometheus endpoint
OTEL_METRICS_EXPORTER_ENV = "OTEL_METRICS_EXPORTER"
OTEL_METRICS_EXPORTER_PROMETHEUS = "prometheus"
OTEL_PROMETHEUS_HOST_ENV = "OTEL_EXPORTER_PROMETHEUS_HOST"
OTEL_PROMETHEUS_PORT_ENV = "OTEL_EXPORTER_PROMETHEUS_PORT"
# --- collector (frictionlens collector, collector/gateway.py); all brief ---------------
#: spans the collector handled, by outcome (attribute METRIC_ATTR_OUTCOME)
METRIC_COLLECTOR_SPANS = "frictionlens.collector.spans"
#: spans waiting between the receiver and the pipeline (observable gauge)
METRIC_COLLECTOR_QUEUE = "frictionlens.collector.queue.spans"
# frictionlens.collector.spans outcome values
COLLECTOR_PROCESSED = "processed"  # ran through the signal pipeline
COLLECTOR_PASSED_THROUGH = (
    "passed_through"  # already enriched by an in-app pipeline: forwarded untouched
)
COLLECTOR_REFUSED = "refused"  # queue full: the sender got 429 / RESOURCE_EXHAUSTED and retries
COLLECTOR_EXPORT_FAILED = "export_failed"  # the forward endpoint kept failing: spans lost
#: attributes only an in-app (or upstream) SignalPipeline sets: a span carrying any is enriched
ENRICHED_MARKERS = (REVIEW_NEEDED, TRAJECTORY_STEPS, DRIFT_STREAM)
# --- gen_ai.provider.name values for OpenAI-compatible servers ---------------------------
# Well-known values of the GenAI conventions (semantic-conventions-genai, gen_ai.provider.name,
# 2025 revision) where one exists; the others are custom values, as the conventions allow.
PROVIDER_OPENAI = "openai"
PROVIDER_AZURE_OPENAI = "azure.ai.openai"
PROVIDER_GROQ = "groq"
PROVIDER_DEEPSEEK = "deepseek"
PROVIDER_MISTRAL = "mistral_ai"
PROVIDER_X_AI = "x_ai"
PROVIDER_PERPLEXITY = "perplexity"
PROVIDER_GEMINI = "gcp.gemini"
PROVIDER_OPENROUTER = "openrouter"  # custom
PROVIDER_OLLAMA = "ollama"  # custom: a local server on Ollama's default port 11434
# --- export losses and state bounds ---------------------------------------------------------
# Spans the export stage could not deliver (queue full, exporter failed or timed out).
METRIC_EXPORT_DROPPED = "frictionlens.export.dropped"
METRIC_ATTR_REASON = "reason"
EXPORT_DROPPED_QUEUE_FULL = "queue_full"  # the batch queue was full when the span ended
EXPORT_DROPPED_FAILED = (
    "export_failed"  # the exporter gave up on the batch (error, timeout, refusal)
)
EXPORT_DROPPED_SHUTDOWN = "shutdown"  # unsent when shutdown's time ran out, or ended after it
# Per-key state the signal stages forgot to stay within their caps.
METRIC_STATE_EVICTIONS = "frictionlens.state.evictions"
METRIC_ATTR_STATE = "state"  # which table: conversations, traces, tasks, streams, ...
EVICTED_CAP = "cap"  # least recently used entry dropped: the table was full
EVICTED_TTL = "ttl"  # entry idle past its time to live
# --- human review (frictionlens review, exporters/review_quality.py); all brief ----------------
# A reviewer's verdict is one span, linked to the conversation's summary span; a verdict on
# friction findings is one event per finding on it. The names under ``frictionlens.review.``
# beside the pipeline's ``needed`` and ``reason`` say what a human decided.
REVIEW_SPAN = "frictionlens.review"
REVIEW_CONVERSATION_ID = "frictionlens.review.conversation_id"
REVIEW_REVIEWER = "frictionlens.review.reviewer"
#: the reviewer's answer to "did this conversation need review?", given before the flag is shown
REVIEW_VERDICT = "frictionlens.review.verdict"
REVIEW_NOTE = "frictionlens.review.note"
#: how the conversation entered the review queue, and the probability it had of entering
REVIEW_SOURCE = "frictionlens.review.source"
REVIEW_SAMPLE_PROBABILITY = "frictionlens.review.sample_probability"
REVIEW_FINDING_EVENT = "frictionlens.review.finding"
REVIEW_FINDING_VERDICT = "frictionlens.review.finding.verdict"
REVIEW_FINDING_ACTUAL_KIND = "frictionlens.review.finding.actual_kind"  # with other_kind
REVIEW_FINDING_TRACE_ID = "frictionlens.review.finding.trace_id"  # the span the finding is on
REVIEW_FINDING_SPAN_ID = "frictionlens.review.finding.span_id"
# the finding's kind goes on the event as FRICTION_KIND
# frictionlens.review.verdict values
REVIEW_VERDICT_NEEDED = "needed"
REVIEW_VERDICT_NOT_NEEDED = "not_needed"
# frictionlens.review.source values
REVIEW_SOURCE_FLAGGED = "flagged"  # flagged by the pipeline (frictionlens.review.needed)
REVIEW_SOURCE_SAMPLE = "unflagged_sample"  # drawn at random from the unflagged conversations
# frictionlens.review.finding.verdict values
FINDING_CONFIRMED = "confirmed"
FINDING_FALSE_ALARM = "false_alarm"
FINDING_OTHER_KIND = "other_kind"
#: service.name of the review app's spans unless OTEL_SERVICE_NAME names another
REVIEW_SERVICE_NAME = "frictionlens-review"
