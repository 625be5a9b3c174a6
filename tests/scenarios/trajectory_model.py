"""Agent runs as data, and the agent loop that plays them through a driver.

A run is what an agent did: model turns (the tool calls the model asked for, or its final
answer, or a failed call), tool results (the app ran the tool; it may fail, or run a
nested agent), and how the task ended. ``play()`` is the app: it opens the task, makes each
model call through the ``Driver``, runs each tool in ``frictionlens.tool()`` and hands the
result back to the driver. A driver decides how a model call happens: spans we build
ourselves (``trajectory_spans.SpanDriver``), or the real OpenAI SDK against a local server
that answers each call with the scripted turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.trace import Status, StatusCode, Tracer

import frictionlens.tasks as fl
from frictionlens import semconv


@dataclass(frozen=True)
class ToolCall:
    """One tool call requested by the model in a response."""

    tool: str
    arguments: str
    """JSON text, as the model sends it"""
    call_id: str


@dataclass(frozen=True)
class ModelTurn:
    """One LLM call: the model asks for tools, answers, or the call fails."""

    calls: tuple[ToolCall, ...] = ()
    answer: str | None = None
    error: str | None = None
    """the call fails with this error type (e.g. an HTTP 500 -> ``InternalServerError``)"""
    input_tokens: int = 120
    output_tokens: int = 30


@dataclass(frozen=True)
class ToolResult:
    """The app runs the tool call ``call_id`` and sends its result back to the model."""

    call_id: str
    tool: str
    content: str = "ok"
    error: str | None = None
    """the tool raises an exception of this type"""
    traced: bool = True
    """run inside ``frictionlens.tool()`` (else the app runs it without a span)"""
    agent: AgentRun | None = None
    """a nested agent the tool runs (agent as a tool)"""


Step = ModelTurn | ToolResult

ENDINGS = ("succeed", "fail", "abandon", "raise", "cancel", "return")
OPENERS = ("task", "framework", "none")


@dataclass(frozen=True)
class Truth:
    """Hand-labelled trajectory of a run's root span (definitions: processors/trajectory)."""

    steps: int
    tool_calls: int
    tool_errors: int
    redundant_calls: int
    loops: int
    outcome: str
    brute_force: bool
    expected_steps: int | None = None


@dataclass(frozen=True)
class AgentRun:
    id: str
    task: str
    steps: tuple[Step, ...]
    truth: Truth | None
    """None: the root is not a task and must carry no trajectory"""
    expected_steps: int | None = None
    ending: str = "succeed"
    """succeed / fail / abandon: the app's verdict; raise: an exception leaves the task;
    cancel: the task is cancelled; return: the block ends with no verdict"""
    opener: str = "task"
    """task: ``frictionlens.task()``; framework: an ``invoke_agent`` span another framework
    opens (status OK on success, ERROR on failure); none: a plain trace root"""
    requests_visible: bool = True
    """the LLM spans carry the model's tool requests (our instrumentation does)"""

    @property
    def input_tokens(self) -> int:
        return sum(s.input_tokens for s in self._turns() if s.error is None)

    @property
    def output_tokens(self) -> int:
        return sum(s.output_tokens for s in self._turns() if s.error is None)

    def _turns(self) -> Iterator[ModelTurn]:
        for s in self.steps:
            if isinstance(s, ModelTurn):
                yield s
            elif s.agent is not None:
                yield from s.agent._turns()

    def nested(self) -> Iterator[AgentRun]:
        """This run and every run nested in it."""
        yield self
        for s in self.steps:
            if isinstance(s, ToolResult) and s.agent is not None:
                yield from s.agent.nested()


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    runs: tuple[AgentRun, ...]
    """played in order against one fresh stage (learned budgets build up across runs)"""


class Driver(Protocol):
    def model_call(self, run: AgentRun, turn: ModelTurn) -> None:
        """Make one LLM call that the model answers with ``turn``; raise as the SDK would
        when ``turn.error`` is set."""

    def tool_result(self, run: AgentRun, result: ToolResult) -> None:
        """The app sends the tool's result (or error) back into the conversation."""

    def call_id(self, scripted: str) -> str:
        """The id the model gave the scripted tool call ``scripted`` (servers make their own)."""


class ScriptedError(Exception):
    """Raised where a run says a call fails; its type name is the run's error label."""


def scripted_error(label: str) -> ScriptedError:
    return type(label, (ScriptedError,), {})(label)


def play(run: AgentRun, driver: Driver, tracer: Tracer, roots: dict[str, int]) -> None:
    """Play ``run`` as an app would; ``roots[run.id]`` = span id of each (nested) run's root."""
    try:
        with _opened(run, tracer, roots) as verdict:
            for step in run.steps:
                if isinstance(step, ModelTurn):
                    with contextlib.suppress(Exception):  # the agent retries on its next turn
                        driver.model_call(run, step)
                else:
                    _run_tool(run, step, driver, tracer, roots)
            _end(run, verdict)
    except (ScriptedError, asyncio.CancelledError):
        pass


def _run_tool(
    run: AgentRun, step: ToolResult, driver: Driver, tracer: Tracer, roots: dict[str, int]
) -> None:
    scope = (
        fl.tool(step.tool, call_id=driver.call_id(step.call_id))
        if step.traced
        else contextlib.nullcontext()
    )
    with contextlib.suppress(ScriptedError):  # the app reports the error to the model
        with scope:
            if step.agent is not None:
                play(step.agent, driver, tracer, roots)
            if step.error is not None:
                raise scripted_error(step.error)
    driver.tool_result(run, step)


@contextlib.contextmanager
def _opened(
    run: AgentRun, tracer: Tracer, roots: dict[str, int]
) -> Iterator[Callable[[str], None]]:
    if run.opener == "task":
        with fl.task(run.task, expected_steps=run.expected_steps) as handle:
            roots[run.id] = handle.span.get_span_context().span_id
            yield lambda ending: {
                "succeed": handle.succeed,
                "fail": lambda: handle.fail("no_answer"),
                "abandon": handle.abandon,
            }.get(ending, lambda: None)()
        return
    attrs = {}
    name = run.task
    if run.opener == "framework":
        attrs = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
            semconv.GEN_AI_AGENT_NAME: run.task,
        }
        name = f"{semconv.OP_INVOKE_AGENT} {run.task}"
    with tracer.start_as_current_span(name, attributes=attrs) as span:
        roots[run.id] = span.get_span_context().span_id

        def verdict(ending: str) -> None:
            if run.opener != "framework":
                return
            if ending == "succeed":
                span.set_status(Status(StatusCode.OK))
            elif ending == "fail":
                span.set_attribute(semconv.ERROR_TYPE, "no_answer")
                span.set_status(Status(StatusCode.ERROR, "no_answer"))

        yield verdict


def _end(run: AgentRun, verdict: Callable[[str], None]) -> None:
    if run.ending == "raise":
        raise scripted_error("TaskCrashed")
    if run.ending == "cancel":
        raise asyncio.CancelledError()
    verdict(run.ending)
