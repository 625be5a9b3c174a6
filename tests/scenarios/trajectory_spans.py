"""Replays the labelled agent runs with spans built as our OpenAI instrumentation builds
them, through a SignalPipeline with the trajectory stage, and compares every counted
attribute of each root span with its ground truth.

    python -m tests.scenarios.trajectory_spans     # prints the agreement table
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

from opentelemetry.metrics import Meter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from frictionlens import runtime, semconv
from frictionlens.features import record as features
from frictionlens.features.record import CallFeatures
from frictionlens.features.text import digest
from frictionlens.processors.pipeline import SignalPipeline
from frictionlens.processors.trajectory import TrajectoryStage
from tests.scenarios.trajectory_model import (
    AgentRun,
    ModelTurn,
    Scenario,
    ToolResult,
    play,
    scripted_error,
)
from tests.scenarios.trajectory_runs import SCENARIOS

SALT = b"trajectory-scenarios"
MODEL = "gpt-4o-mini"

#: truth field -> root span attribute
COUNTED = {
    "steps": semconv.TRAJECTORY_STEPS,
    "tool_calls": semconv.TRAJECTORY_TOOL_CALLS,
    "tool_errors": semconv.TRAJECTORY_TOOL_ERRORS,
    "redundant_calls": semconv.TRAJECTORY_REDUNDANT_CALLS,
    "loops": semconv.TRAJECTORY_LOOPS,
    "expected_steps": semconv.TRAJECTORY_EXPECTED_STEPS,
    "outcome": semconv.TRAJECTORY_OUTCOME,
    "brute_force": semconv.TRAJECTORY_BRUTE_FORCE,
    "input_tokens": semconv.TRAJECTORY_INPUT_TOKENS,
    "output_tokens": semconv.TRAJECTORY_OUTPUT_TOKENS,
}


class SpanDriver:
    """A model call as the OpenAI instrumentation records it: a chat client span with usage
    and finish reason, ``error.type`` when the call fails, and the requested tool calls as
    in-process features (salted argument hashes and call ids)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def model_call(self, run: AgentRun, turn: ModelTurn) -> None:
        span = self.tracer.start_span(
            f"{semconv.OP_CHAT} {MODEL}",
            kind=SpanKind.CLIENT,
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: MODEL,
            },
        )
        if turn.error is not None:
            span.set_attribute(semconv.ERROR_TYPE, turn.error)
            span.set_status(Status(StatusCode.ERROR, turn.error))
        else:
            span.set_attributes(
                {
                    semconv.GEN_AI_USAGE_INPUT_TOKENS: turn.input_tokens,
                    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: turn.output_tokens,
                    semconv.GEN_AI_RESPONSE_FINISH_REASONS: (
                        "tool_calls" if turn.calls else "stop",
                    ),
                }
            )
            if run.requests_visible and turn.calls:
                features.attach(
                    span,
                    CallFeatures(
                        tool_calls=tuple((c.tool, digest(c.arguments, SALT)) for c in turn.calls),
                        tool_call_ids=tuple(c.call_id for c in turn.calls),
                    ),
                )
        span.end()
        if turn.error is not None:
            raise scripted_error(turn.error)

    def tool_result(self, run: AgentRun, result: ToolResult) -> None:
        """Nothing to send: the next scripted turn is the model's answer."""

    def call_id(self, scripted: str) -> str:
        return scripted


@contextlib.contextmanager
def frictionlens_spans_to(provider: TracerProvider) -> Iterator[None]:
    """``task()`` / ``tool()`` spans go to ``provider``, as after ``instrument(tracer_provider=...)``."""
    with mock.patch.object(runtime, "tracer", lambda: provider.get_tracer(semconv.SCOPE_NAME)):
        yield


def replay(
    scenario: Scenario, *, stage: TrajectoryStage | None = None, meter: Meter | None = None
) -> dict[str, ReadableSpan]:
    """Play every run of ``scenario`` against one fresh stage; the exported root span of each (nested) run."""
    exporter = InMemorySpanExporter()
    pipeline = SignalPipeline(
        [stage or TrajectoryStage(meter=meter)], downstream=SimpleSpanProcessor(exporter)
    )
    provider = TracerProvider()
    provider.add_span_processor(pipeline)
    tracer = provider.get_tracer("scenario-app")
    roots: dict[str, int] = {}
    with frictionlens_spans_to(provider):
        for run in scenario.runs:
            play(run, SpanDriver(tracer), tracer, roots)
    pipeline.shutdown()
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    return {run_id: by_id[span_id] for run_id, span_id in roots.items()}


def truth_of(run: AgentRun) -> dict[str, Any]:
    if run.truth is None:
        return dict.fromkeys(COUNTED)
    want = {name: getattr(run.truth, name) for name in COUNTED if hasattr(run.truth, name)}
    want["input_tokens"], want["output_tokens"] = run.input_tokens, run.output_tokens
    return want


def observed(span: ReadableSpan) -> dict[str, Any]:
    attrs = span.attributes or {}
    return {name: attrs.get(key) for name, key in COUNTED.items()}


def mismatches(run: AgentRun, span: ReadableSpan) -> dict[str, tuple[Any, Any]]:
    """field -> (got, want) for every counted attribute that differs from the ground truth."""
    got, want = observed(span), truth_of(run)
    return {k: (got[k], want[k]) for k in COUNTED if got[k] != want[k]}


def table() -> tuple[str, int, int]:
    """The agreement table (markdown), runs that match exactly, runs in all."""
    head = [
        "scenario",
        "kind",
        "run",
        "steps",
        "tools",
        "errors",
        "redundant",
        "loops",
        "budget",
        "outcome",
        "brute force",
        "exact",
    ]
    shown = (
        "steps",
        "tool_calls",
        "tool_errors",
        "redundant_calls",
        "loops",
        "expected_steps",
        "outcome",
        "brute_force",
    )
    rows: list[list[str]] = []
    runs: list[int] = []  # how many identical consecutive runs each row stands for
    exact = total = 0
    for scenario in SCENARIOS:
        spans = replay(scenario)
        for top in scenario.runs:
            for run in top.nested():
                total += 1
                got, bad = observed(spans[run.id]), mismatches(run, spans[run.id])
                exact += not bad
                cells = [
                    ("-" if got[n] is None else str(got[n]))
                    + (f" (want {bad[n][1]})" if n in bad else "")
                    for n in shown
                ]
                row = [scenario.name, scenario.kind, run.id, *cells, "yes" if not bad else "NO"]
                if rows and rows[-1][:2] == row[:2] and rows[-1][3:] == row[3:]:
                    runs[-1] += 1
                    rows[-1][2] = f"{rows[-1][2].split(' ')[0]} (+{runs[-1] - 1} alike)"
                else:
                    rows.append(row)
                    runs.append(1)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]
    lines.append(
        f"\n{exact}/{total} runs match the ground truth on every counted attribute ({', '.join(COUNTED)})."
    )
    return "\n".join(lines), exact, total


if __name__ == "__main__":
    text, ok, n = table()
    print(text)
    sys.exit(0 if ok == n else 1)
