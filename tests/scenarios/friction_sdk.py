"""A driver that makes every call through the real ``openai`` SDK, instrumented by ``instrument()``.

The SDK talks to an in-process transport that answers each request with the scripted text
(a chat completion, a stream the app stops after two chunks, or an HTTP 500), or, given a
``LocalLLMServer``, to that server over real HTTP; either way the spans, features and
feedback come from frictionlens' own instrumentation, exactly as in an app.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frictionlens
from frictionlens import runtime, semconv
from frictionlens.context import last_call
from frictionlens.feedback import feedback
from frictionlens.processors.friction import FrictionStage
from tests.scenarios.friction_model import IDLE

MODEL = "gpt-4o-mini"


class SDKDriver:
    """``instrument()`` on an app's SDK providers, the friction stage in its pipeline."""

    def __init__(
        self, salt: str = "scenario-salt", server: Any = None, **stage_options: Any
    ) -> None:
        """``server``: a running ``frictionlens.localserver.LocalLLMServer`` to call over HTTP."""
        import httpx2
        import openai

        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.metrics = InMemoryMetricReader()
        frictionlens.instrument(
            tracer_provider=provider,
            meter_provider=MeterProvider(metric_readers=[self.metrics]),
            exporter="none",
            salt=salt,
        )
        state = runtime.installed()
        assert state is not None
        self.pipeline = state.pipeline
        if not any(isinstance(s, FrictionStage) for s in self.pipeline.stages):
            self.pipeline.add_stage(FrictionStage(meter=state.meter, **stage_options))
        self.stage = next(s for s in self.pipeline.stages if isinstance(s, FrictionStage))
        self._reply: tuple[str, bool, bool] = ("", False, False)
        self._ids = itertools.count(1)
        self._openai = openai
        self.server = server
        if server is not None:
            self.client = openai.OpenAI(
                api_key="local", base_url=server.openai_base_url, max_retries=0
            )
            return
        self.client = openai.OpenAI(
            api_key="sk-test",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(self._answer)),
        )

    def _answer(self, request: Any) -> Any:
        import httpx2

        text, fail, stream = self._reply
        if fail:
            return httpx2.Response(
                500, json={"error": {"message": "overloaded", "type": "server_error"}}
            )
        n = next(self._ids)
        base = {"id": f"chatcmpl-{n}", "created": 1700000000, "model": MODEL}
        if not stream:
            return httpx2.Response(
                200,
                json={
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 40, "total_tokens": 90},
                },
            )
        words = text.split(" ")
        half = (len(words) + 1) // 2
        deltas = [
            {"role": "assistant", "content": " ".join(words[:half])},
            {"content": " " + " ".join(words[half:])},
        ]
        events = [
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": d, "finish_reason": None}],
            }
            for d in deltas
        ]
        events += [
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        ]
        body = (
            b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
            + b"data: [DONE]\n\n"
        )
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    def call(
        self,
        messages: list[tuple[str, str]],
        answer: str,
        *,
        conversation_id: str | None,
        fail: bool = False,
        abandon: bool = False,
    ) -> int:
        self._reply = (answer, fail, abandon)
        if self.server is not None:
            from frictionlens.localserver import Reply

            self.server.script(
                Reply(status=500, error="overloaded") if fail else Reply(content=answer)
            )
        sent = [{"role": role, "content": content} for role, content in messages]
        session = (
            frictionlens.session(conversation_id) if conversation_id else contextlib.nullcontext()
        )
        with session:
            if abandon:
                stream = self.client.chat.completions.create(
                    model=MODEL, messages=sent, stream=True
                )
                next(iter(stream))
                next(iter(stream))  # the user has read enough: stop
                stream.close()
            else:
                try:
                    self.client.chat.completions.create(model=MODEL, messages=sent)
                except self._openai.APIStatusError:
                    pass  # the app shows an error; the user may retry
        ref = last_call.get()
        assert ref is not None
        return ref.span_id

    def feedback(self, kind: str | float) -> int:
        feedback(kind)
        self.pipeline.force_flush()  # the stages run on the pipeline's worker thread
        return next(
            s
            for s in reversed(self.exporter.get_finished_spans())
            if s.name == semconv.FEEDBACK_SPAN
        ).context.span_id

    def pause(self, seconds: float) -> None:
        """Real time passes too slowly for a test; the idle end moves the clock instead."""

    def finish(self, end: str) -> list[ReadableSpan]:
        if end == IDLE:
            self.pipeline.tick(time.time_ns() + self.stage.idle_ns + 1)
        else:
            self.pipeline.close_stages()
        spans = list(self.exporter.get_finished_spans())
        frictionlens.uninstrument()
        return spans
