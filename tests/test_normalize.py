"""The normalizer on spans shaped like each peer's, including releases we do not install."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from frictionlens import semconv as sc
from frictionlens import semconv_peers as peers
from frictionlens.features import text as textfeat
from frictionlens.features.record import CallFeatures
from frictionlens.processors.normalize import Normalizer
from frictionlens.processors.pipeline import SpanRecord

SALT = b"test-salt"
CONTENT_KEYS = (
    "content",
    "messages",
    "input.value",
    "output.value",
    "prompt",
    "completion",
    "instructions",
)


def _span(
    name: str = "chat",
    attributes: dict | None = None,
    events: list[tuple[str, dict]] = (),
    error: type | None = None,
):
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    span = tp.get_tracer("peer").start_span(name, attributes=attributes)
    for event, attrs in events:
        span.add_event(event, attrs)
    if error is not None:
        span.record_exception(error("boom"))
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    (finished,) = exporter.get_finished_spans()
    return finished


def _normalize(span, features: CallFeatures | None = None) -> SpanRecord:
    record = SpanRecord(span, features)
    Normalizer(SALT).process(record, lambda s: None)
    return record


def _assert_no_content_added(record: SpanRecord) -> None:
    assert not [k for k in record.attributes if any(c in k for c in CONTENT_KEYS)]


def test_our_own_calls_and_other_spans_are_left_alone():
    ours = _normalize(_span(attributes={sc.GEN_AI_OPERATION_NAME: "chat"}), CallFeatures())
    http = _normalize(_span("GET", {"http.request.method": "GET"}))
    tool = _normalize(_span("execute_tool x", {sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL}))
    for record in (ours, http, tool):
        assert record.attributes == {} and record.to_span() is record.span


def test_genai_conventions_with_content():
    out = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": 'Sure! Here is the JSON:\n{"a": 1}'}],
            "finish_reason": "length",
        }
    ]
    record = _normalize(
        _span(
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: "m",
                sc.GEN_AI_OUTPUT_TYPE: "json",
                sc.GEN_AI_SYSTEM_INSTRUCTIONS: json.dumps(
                    [{"type": "text", "content": "Be terse."}]
                ),
                sc.GEN_AI_INPUT_MESSAGES: json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "hi there"}]}]
                ),
                sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(out),
            }
        )
    )
    a = record.attributes
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",) and a[sc.OUTPUT_TRUNCATED] is True
    assert a[sc.OUTPUT_CHARS] == len(out[0]["parts"][0]["content"])
    assert a[sc.OUTPUT_FORMAT_EXPECTED] == sc.FORMAT_JSON and a[sc.OUTPUT_FORMAT_VALID] is False
    assert a[sc.OUTPUT_FORMAT_ERROR] == sc.FORMAT_ERROR_PREAMBLE and a[sc.OUTPUT_PREAMBLE] is True
    assert sc.GEN_AI_OUTPUT_TYPE not in a  # the peer's own value stays
    feats = record.features
    assert [m.role for m in feats.messages] == ["system", "user"]
    assert feats.messages[1].text.digest == textfeat.digest("hi there", SALT)
    assert feats.system_digest == textfeat.digest("Be terse.", SALT)
    assert feats.outputs[0].chars == a[sc.OUTPUT_CHARS] and feats.output_vector is not None
    _assert_no_content_added(record)


def test_without_content_only_what_the_span_says():
    record = _normalize(
        _span(
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
            }
        )
    )
    assert record.attributes == {sc.OUTPUT_TRUNCATED: False}
    assert record.features is None


def test_unknown_finish_reason_leaves_truncation_out_and_errors_get_their_type():
    record = _normalize(
        _span(
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_INPUT_MESSAGES: json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
                ),
            },
            error=TimeoutError,
        )
    )
    a = record.attributes
    assert a[sc.ERROR_TYPE] == "TimeoutError"
    assert (
        sc.OUTPUT_TRUNCATED not in a
        and sc.OUTPUT_CHARS not in a
        and sc.OUTPUT_FORMAT_VALID not in a
    )
    assert [m.role for m in record.features.messages] == ["user"] and record.features.outputs == ()


def test_event_forms_of_content():
    inference = _normalize(
        _span(
            attributes={sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "anthropic"},
            events=[
                (
                    "gen_ai.client.inference.operation.details",
                    {
                        sc.GEN_AI_INPUT_MESSAGES: json.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": "q"}]}]
                        ),
                        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "finish_reason": "tool_call",
                                    "parts": [
                                        {
                                            "type": "tool_call",
                                            "id": "c1",
                                            "name": "lookup",
                                            "arguments": {"id": 7},
                                        }
                                    ],
                                }
                            ]
                        ),
                    },
                )
            ],
        )
    )
    assert inference.attributes[sc.OUTPUT_FORMAT_EXPECTED] == sc.FORMAT_TOOL_CALL
    assert inference.attributes[sc.OUTPUT_FORMAT_VALID] is True and inference.attributes[
        sc.OUTPUT_CHARS
    ] == len('{"id": 7}')
    assert inference.features.tool_calls == (("lookup", textfeat.digest('{"id": 7}', SALT)),)
    assert inference.features.tool_call_ids == ("c1",)

    legacy = _normalize(
        _span(
            attributes={sc.GEN_AI_OPERATION_NAME: "chat", peers.LEGACY_GEN_AI_SYSTEM: "openai"},
            events=[
                ("gen_ai.system.message", {"content": "Be terse."}),
                ("gen_ai.user.message", {"content": "I can't log in"}),
                (
                    "gen_ai.choice",
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": json.dumps({"content": "I can't help with that."}),
                    },
                ),
            ],
        )
    )
    assert legacy.attributes[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert (
        legacy.attributes[sc.OUTPUT_REFUSAL] is True
        and legacy.attributes[sc.OUTPUT_TRUNCATED] is False
    )
    assert (
        legacy.attributes[sc.OUTPUT_FORMAT_EXPECTED] == sc.FORMAT_TEXT
    )  # no gen_ai.output.type: no format asked
    assert [m.role for m in legacy.features.messages] == ["system", "user"]
    _assert_no_content_added(legacy)


def test_traceloop_indexed_attributes_of_earlier_releases():
    record = _normalize(
        _span(
            "openai.chat",
            {
                peers.LEGACY_GEN_AI_SYSTEM: "OpenAI",
                peers.TRACELOOP_REQUEST_TYPE: "chat",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
                peers.LEGACY_GEN_AI_USAGE_PROMPT_TOKENS: 12,
                peers.LEGACY_GEN_AI_USAGE_COMPLETION_TOKENS: 9,
                peers.LEGACY_OPENAI_SYSTEM_FINGERPRINT: "fp_9",
                peers.TRACELOOP_API_BASE: "https://api.openai.com/v1/",
                peers.LEGACY_TRACELOOP_IS_STREAMING: True,
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "What is 2+2?",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "4",
                "gen_ai.completion.0.finish_reason": "stop",
            },
            events=[("gen_ai.content.completion.chunk", {})],
        )
    )
    a = record.attributes
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat" and a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12 and a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert (
        a[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] == "fp_9"
        and a[sc.SERVER_ADDRESS] == "api.openai.com"
    )
    assert a[sc.GEN_AI_REQUEST_STREAM] is True and a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",) and a[sc.OUTPUT_CHARS] == 1
    assert sc.GEN_AI_REQUEST_MODEL not in a  # already on the span
    assert (
        sc.OUTPUT_FORMAT_EXPECTED not in a and sc.OUTPUT_FORMAT_VALID not in a
    )  # the request's format is unknown
    assert a[sc.OUTPUT_PREAMBLE] is False and a[sc.OUTPUT_CODE_FENCE] is False
    assert record.features.messages[0].text.digest == textfeat.digest("What is 2+2?", SALT)


def test_openinference_tool_calls_params_and_session():
    record = _normalize(
        _span(
            "ChatCompletion",
            {
                peers.OPENINFERENCE_SPAN_KIND: "LLM",
                peers.OPENINFERENCE_LLM_SYSTEM: "openai",
                peers.OPENINFERENCE_MODEL_NAME: "gpt-4o-2024",
                peers.OPENINFERENCE_INVOCATION_PARAMETERS: json.dumps(
                    {
                        "model": "gpt-4o",
                        "temperature": 0.3,
                        "tool_choice": "required",
                        "tools": [{"type": "function"}],
                    }
                ),
                peers.OPENINFERENCE_SESSION_ID: "s-1",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.contents.0.message_content.text": "Where is order A1?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_order",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"id": "A1"',
            },
        )
    )
    a = record.attributes
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat" and a[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024" and a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.3
    assert a[sc.GEN_AI_CONVERSATION_ID] == "s-1"
    assert (
        a[sc.OUTPUT_FORMAT_EXPECTED] == sc.FORMAT_TOOL_CALL and a[sc.OUTPUT_FORMAT_VALID] is False
    )
    assert a[sc.OUTPUT_FORMAT_ERROR] == sc.FORMAT_ERROR_JSON_DECODE
    assert sc.OUTPUT_TRUNCATED not in a  # no finish reason on the span
    assert record.features.messages[0].text.digest == textfeat.digest("Where is order A1?", SALT)
    assert record.features.tool_call_ids == ("call_1",)
    _assert_no_content_added(record)


@pytest.mark.parametrize("kind", ["EMBEDDING", "CHAIN", "TOOL"])
def test_openinference_spans_that_are_not_llm_calls(kind):
    record = _normalize(
        _span("x", {peers.OPENINFERENCE_SPAN_KIND: kind, peers.OPENINFERENCE_LLM_SYSTEM: "openai"})
    )
    assert record.attributes == {} and record.features is None
