"""frictionlens.task() and frictionlens.tool(): spans, outcomes, and exceptions passed through unchanged."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from frictionlens import health, runtime, semconv
from frictionlens.tasks import task, tool
from tests.scenarios.trajectory_spans import frictionlens_spans_to


@pytest.fixture
def exported():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with frictionlens_spans_to(provider):
        yield exporter


def _only(exporter, name):
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


class Boom(Exception):
    pass


def test_task_opens_an_invoke_agent_span_that_parents_the_calls_inside(exported):
    with task("triage", expected_steps=3) as handle:
        inner = trace.get_current_span()
        with tool("search", call_id="c1") as span:
            assert span.get_span_context().span_id != inner.get_span_context().span_id
    root, run = _only(exported, "invoke_agent triage"), _only(exported, "execute_tool search")
    assert root.kind is SpanKind.INTERNAL and inner.get_span_context() == root.context
    assert root.attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_INVOKE_AGENT
    assert root.attributes[semconv.GEN_AI_AGENT_NAME] == "triage"
    assert root.attributes[semconv.TRAJECTORY_EXPECTED_STEPS] == 3
    assert root.attributes[semconv.TRAJECTORY_OUTCOME] == "success"  # ended normally, no verdict
    assert run.parent.span_id == root.context.span_id
    assert run.attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_EXECUTE_TOOL
    assert run.attributes[semconv.GEN_AI_TOOL_NAME] == "search"
    assert run.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "c1"
    assert handle.outcome == "success"
    assert trace.get_current_span() is trace.INVALID_SPAN


@pytest.mark.parametrize(
    "verdict, outcome, error_type",
    [
        (lambda h: h.succeed(), "success", None),
        (lambda h: h.fail(), "failure", semconv.ERROR_TYPE_OTHER),
        (lambda h: h.fail("no_answer"), "failure", "no_answer"),
        (lambda h: h.abandon(), "abandoned", None),
        (lambda h: (h.fail("x"), h.succeed()), "success", None),
    ],
)
def test_the_verdict_sets_the_outcome(exported, verdict, outcome, error_type):
    with task("t") as handle:
        verdict(handle)
    root = _only(exported, "invoke_agent t")
    assert root.attributes[semconv.TRAJECTORY_OUTCOME] == outcome
    assert root.attributes.get(semconv.ERROR_TYPE) == error_type
    assert (root.status.status_code is StatusCode.ERROR) == (outcome == "failure")


def test_an_exception_is_a_failure_and_passes_through_unchanged(exported):
    err = Boom("kept")
    with pytest.raises(Boom) as caught:
        with task("t") as handle:
            handle.succeed()
            raise err
    assert caught.value is err
    root = _only(exported, "invoke_agent t")
    assert root.attributes[semconv.TRAJECTORY_OUTCOME] == "failure"
    assert root.attributes[semconv.ERROR_TYPE] == "Boom"
    assert [e.name for e in root.events] == ["exception"]
    handle.abandon()  # after the block: ignored
    assert handle.outcome == "failure"


def test_a_fail_reason_names_the_error_of_an_exception(exported):
    with pytest.raises(Boom):
        with task("t") as handle:
            handle.fail("quota")
            raise Boom()
    assert _only(exported, "invoke_agent t").attributes[semconv.ERROR_TYPE] == "quota"


def test_async_task_and_tool_and_cancellation(exported):
    async def agent():
        async with task("a") as handle:
            async with tool("fetch"):
                await asyncio.sleep(0)
            handle.succeed()
        async with task("cancelled"):
            raise asyncio.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(agent())
    assert _only(exported, "invoke_agent a").attributes[semconv.TRAJECTORY_OUTCOME] == "success"
    assert (
        _only(exported, "execute_tool fetch").parent.span_id
        == _only(exported, "invoke_agent a").context.span_id
    )
    cancelled = _only(exported, "invoke_agent cancelled")
    assert cancelled.attributes[semconv.TRAJECTORY_OUTCOME] == "abandoned"
    assert cancelled.status.status_code is StatusCode.UNSET


def test_tool_errors_are_recorded_and_reraised_unchanged(exported):
    err = KeyError("sku")
    with pytest.raises(KeyError) as caught:
        with tool("lookup"):
            raise err
    assert caught.value is err
    span = _only(exported, "execute_tool lookup")
    assert (
        span.attributes[semconv.ERROR_TYPE] == "KeyError"
        and span.status.status_code is StatusCode.ERROR
    )
    assert semconv.GEN_AI_TOOL_CALL_ID not in span.attributes


def test_the_same_object_can_be_entered_again(exported):
    t = task("again")
    for _ in range(2):
        with t:
            with t:
                pass
    assert len([s for s in exported.get_finished_spans() if s.name == "invoke_agent again"]) == 4


def test_a_broken_tracer_never_reaches_the_app(monkeypatch):
    def broken():
        raise RuntimeError("no tracer")

    monkeypatch.setattr(runtime, "tracer", broken)
    before = health.internal_errors().get("task", 0)
    with task("t") as handle:
        handle.succeed()
        with tool("x"):
            result = 42
    assert result == 42
    assert health.internal_errors()["task"] == before + 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "t", "expected_steps": 0},
        {"name": "t", "expected_steps": True},
        {"name": "t", "expected_steps": 2.5},
    ],
)
def test_bad_arguments_are_rejected_at_the_call(kwargs):
    with pytest.raises(ValueError):
        task(**kwargs)
