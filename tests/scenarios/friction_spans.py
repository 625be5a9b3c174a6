"""A driver that builds the call spans itself, as the OpenAI instrumentation does.

Attributes and in-process features follow the instrumentation's span contract (GenAI
attributes, ``CallFeatures`` from ``frictionlens.features.text``), so the friction stage sees
what it sees behind the real SDK, with a clock the driver controls.
"""

from __future__ import annotations

import itertools
import time
from functools import lru_cache

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from frictionlens import semconv
from frictionlens.context import CallRef, last_call
from frictionlens.features import record as features
from frictionlens.features import text
from frictionlens.features.answer import non_answer
from frictionlens.features.record import CallFeatures, MessageFeatures, TextFeatures
from frictionlens.feedback import emit_feedback
from frictionlens.processors.friction import FrictionStage
from frictionlens.processors.pipeline import SignalPipeline
from tests.scenarios.friction_model import IDLE

SALT = b"scenario-salt"
MODEL = "gpt-4o-mini"


@lru_cache(maxsize=4096)
def text_features(
    value: str, salt: bytes = SALT, embedder: text.Embedder | None = None
) -> TextFeatures:
    return text.text_features(value, salt, embedder)


class SpanDriver:
    """Calls become SDK spans with call features, through a SignalPipeline with a FrictionStage."""

    def __init__(
        self, salt: bytes = SALT, embedder: text.Embedder | None = None, **stage_options: object
    ) -> None:
        """``embedder``: the semantic embedder the instrumentation would use (None: sketch only)."""
        self.salt = salt
        self.embedder = embedder
        self.metrics = InMemoryMetricReader()
        meter = MeterProvider(metric_readers=[self.metrics]).get_meter("test")
        self.stage = FrictionStage(meter=meter, **stage_options)  # type: ignore[arg-type]
        self.exporter = InMemorySpanExporter()
        self.pipeline = SignalPipeline(
            [self.stage], SimpleSpanProcessor(self.exporter), tick_interval_s=3600
        )
        provider = TracerProvider()
        provider.add_span_processor(self.pipeline)
        self.tracer = provider.get_tracer("scenario")
        self.now = time.time_ns()
        self._ids = itertools.count(1)

    def call(
        self,
        messages: list[tuple[str, str]],
        answer: str,
        *,
        conversation_id: str | None,
        fail: bool = False,
        abandon: bool = False,
    ) -> int:
        attrs: dict[str, object] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.GEN_AI_REQUEST_MODEL: MODEL,
        }
        if conversation_id is not None:
            attrs[semconv.GEN_AI_CONVERSATION_ID] = conversation_id
        if abandon:
            attrs[semconv.GEN_AI_REQUEST_STREAM] = True
        span = self.tracer.start_span(
            f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=attrs, start_time=self.now
        )
        self.now += 1_500_000_000
        response_id = None
        if fail:
            span.set_attribute(semconv.ERROR_TYPE, "APIConnectionError")
        else:
            response_id = f"chatcmpl-{next(self._ids)}"
            span.set_attribute(semconv.GEN_AI_RESPONSE_ID, response_id)
            span.set_attribute(semconv.OUTPUT_CHARS, len(answer))
        if abandon:
            span.set_attribute(semconv.STREAM_ABANDONED, True)
        outputs = () if fail else (text_features(answer, self.salt, self.embedder),)
        if outputs and not abandon and answer:  # as the instrumentation's output signals
            request = next((c for r, c in reversed(messages) if r == "user"), "")
            span.set_attribute(
                semconv.OUTPUT_NON_ANSWER, non_answer(request, answer, outputs[0].cues)
            )
        feats = CallFeatures(
            messages=tuple(
                MessageFeatures(role, text_features(content, self.salt, self.embedder))
                for role, content in messages
            ),
            outputs=outputs,
        )
        features.attach(span, feats)
        span.end(end_time=self.now)
        ctx = span.get_span_context()
        last_call.set(
            CallRef(ctx.trace_id, ctx.span_id, response_id, conversation_id)
        )  # as the instrumentation does
        return ctx.span_id

    def feedback(self, kind: str | float) -> int:
        value = None
        if not isinstance(kind, str):
            kind, value = semconv.FEEDBACK_RATING, float(kind)
        return (
            emit_feedback(self.tracer, kind, value=value, call=last_call.get())
            .get_span_context()
            .span_id
        )

    def pause(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)

    def finish(self, end: str) -> list[ReadableSpan]:
        if end == IDLE:
            self.pipeline.tick(self.now + self.stage.idle_ns + 1)
        else:
            self.pipeline.close_stages()
        return list(self.exporter.get_finished_spans())
