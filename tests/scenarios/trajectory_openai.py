"""Replays the labelled agent runs through the real OpenAI SDK, instrumented by
``frictionlens.instrument()``, over real HTTP to the local server, which answers each call
with the run's scripted turn (tool calls, answer, usage, or an HTTP 500). Tool results go
back to the model as ``tool`` messages, as a real agent loop sends them.

    python -m tests.scenarios.trajectory_openai     # prints the agreement table
"""

from __future__ import annotations

import sys
from typing import Any

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frictionlens
from frictionlens import runtime
from frictionlens.localserver import LocalLLMServer, Reply, Usage
from frictionlens.processors.trajectory import TrajectoryStage
from tests.scenarios.trajectory_model import AgentRun, ModelTurn, Scenario, ToolResult, play
from tests.scenarios.trajectory_runs import SCENARIOS
from tests.scenarios.trajectory_spans import MODEL, mismatches


def replayable(scenario: Scenario) -> bool:
    """Runs whose LLM spans hide the tool requests stand for other instrumentations: not ours."""
    return all(run.requests_visible for top in scenario.runs for run in top.nested())


class OpenAIDriver:
    """Each model turn is one ``chat.completions.create`` the local server answers with the turn."""

    def __init__(self, client: openai.OpenAI, server: LocalLLMServer) -> None:
        self.client = client
        self.server = server
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.ids: dict[str, str] = {}  # scripted call id -> the id in the server's response

    def model_call(self, run: AgentRun, turn: ModelTurn) -> None:
        if turn.error is not None:
            self.server.script(Reply(status=500, error=turn.error))
        else:
            self.server.script(
                Reply(
                    content=turn.answer or "",
                    tool_calls=[(c.tool, c.arguments) for c in turn.calls],
                    usage=Usage(turn.input_tokens, turn.output_tokens),
                )
            )
        messages = self.history.setdefault(
            run.id, [{"role": "user", "content": f"Please handle: {run.task}"}]
        )
        response = self.client.chat.completions.create(
            model=MODEL, messages=messages, tools=_tools(run)
        )
        message = response.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        for call, sent in zip(turn.calls, message.tool_calls or ()):
            self.ids[call.call_id] = sent.id

    def tool_result(self, run: AgentRun, result: ToolResult) -> None:
        if result.call_id in self.ids:  # tools the app ran on its own have nobody to answer
            self.history[run.id].append(
                {
                    "role": "tool",
                    "tool_call_id": self.ids[result.call_id],
                    "content": result.error or result.content,
                }
            )

    def call_id(self, scripted: str) -> str:
        return self.ids.get(scripted, scripted)


def _tools(run: AgentRun) -> list[dict[str, Any]]:
    names = sorted({c.tool for s in run.steps if isinstance(s, ModelTurn) for c in s.calls})
    return [
        {
            "type": "function",
            "function": {"name": n, "parameters": {"type": "object", "properties": {}}},
        }
        for n in names
    ] or openai.NOT_GIVEN  # type: ignore[return-value]


def replay(scenario: Scenario, server: LocalLLMServer) -> dict[str, ReadableSpan]:
    """Every run of ``scenario`` through ``instrument()`` and the SDK; the exported root of each (nested) run."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    meters = MeterProvider()
    frictionlens.instrument(tracer_provider=provider, meter_provider=meters, exporter="none")
    roots: dict[str, int] = {}
    try:
        pipeline = runtime.installed().pipeline  # type: ignore[union-attr]
        if not any(isinstance(stage, TrajectoryStage) for stage in pipeline.stages):
            pipeline.add_stage(TrajectoryStage(meter=meters.get_meter("scenarios")))
        tracer = provider.get_tracer("scenario-app")
        with openai.OpenAI(
            base_url=server.openai_base_url, api_key="local", max_retries=0
        ) as client:
            driver = OpenAIDriver(client, server)
            for run in scenario.runs:
                play(run, driver, tracer, roots)
    finally:
        frictionlens.uninstrument()
        meters.shutdown()
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    return {run_id: by_id[span_id] for run_id, span_id in roots.items()}


def main() -> int:
    total = exact = 0
    with LocalLLMServer() as server:
        for scenario in filter(replayable, SCENARIOS):
            server.reset()
            spans = replay(scenario, server)
            for top in scenario.runs:
                for run in top.nested():
                    total += 1
                    bad = mismatches(run, spans[run.id])
                    exact += not bad
                    if bad:
                        print(
                            f"{scenario.name} / {run.id}: "
                            + ", ".join(f"{k} got {g} want {w}" for k, (g, w) in bad.items())
                        )
    print(
        f"{exact}/{total} runs through the OpenAI SDK match the ground truth on every counted attribute."
    )
    return 0 if exact == total else 1


if __name__ == "__main__":
    sys.exit(main())
