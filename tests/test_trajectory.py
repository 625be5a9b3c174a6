"""Trajectory stage: pairing, redundancy, loops, budgets, compounding, bounds and robustness."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from frictionlens import health, semconv
from frictionlens.features import record as features
from frictionlens.features.record import CallFeatures
from frictionlens.processors.pipeline import SignalPipeline
from frictionlens.processors.trajectory import TaskHistory, TrajectoryStage
from frictionlens.processors.trajectory.analysis import (
    count_loops,
    count_redundant,
    over_budget,
    pair_tool_calls,
)

# -- analysis ---------------------------------------------------------------------------------


def _req(seq, name, args, call_id=None):
    return (seq, True, name, args, call_id, False)


def _ran(seq, name, call_id=None, error=False):
    return (seq, False, name, None, call_id, error)


def test_a_request_and_the_span_that_ran_it_are_one_call():
    calls = pair_tool_calls(
        [
            _req(1, "a", 11, "c1"),
            _req(2, "a", 12, "c2"),
            _ran(3, "a", "c2", True),
            _ran(4, "a", "c1"),
        ]
    )
    assert [(c.args, c.error) for c in calls] == [(11, False), (12, True)]


def test_pairing_by_name_in_order_when_ids_are_missing():
    calls = pair_tool_calls(
        [_req(1, "a", 11), _req(2, "b", 21), _ran(3, "b", error=True), _ran(4, "a")]
    )
    assert [(c.name, c.args, c.error) for c in calls] == [("a", 11, False), ("b", 21, True)]


def test_different_call_ids_are_different_calls():
    calls = pair_tool_calls([_req(1, "a", 11, "c1"), _ran(2, "a", "other")])
    assert [(c.args, c.call_id) for c in calls] == [(11, "c1"), (None, "other")]


def test_a_span_that_ends_before_its_request_is_paired_by_id():
    calls = pair_tool_calls([_ran(1, "a", "c1", True), _req(2, "a", 11, "c1")])
    assert [(c.args, c.error) for c in calls] == [(11, True)]


@pytest.mark.parametrize(
    "seq, loops",
    [
        ("ABAB", 1),
        ("ABABAB", 2),
        ("ABCABC", 1),
        ("ABCABCABC", 2),
        ("AAAA", 0),
        ("ABA", 0),
        ("XABAB", 1),
        ("ABCBC", 1),
        ("ABACABAC", 1),
        ("ABABCDCD", 2),
        ("ABCDEFGHIABCDEFGHI", 0),
        ("", 0),
    ],
)
def test_loops_count_immediate_repeats_of_a_cycle(seq, loops):
    assert count_loops(list(seq), max_period=8) == loops


def test_calls_with_unknown_arguments_never_loop():
    assert count_loops([0, 1, 2, 3]) == 0  # call_tokens gives such calls their unique index


def test_redundant_calls_need_the_same_name_and_arguments():
    calls = pair_tool_calls(
        [
            _req(1, "a", 1),
            _req(2, "a", 1),
            _req(3, "b", 1),
            _req(4, "a", 2),
            _ran(5, "z"),
            _ran(6, "z"),
        ]
    )
    assert count_redundant(calls) == 1


@pytest.mark.parametrize(
    "steps, expected, over",
    [(6, 4, True), (5, 4, False), (3, 2, False), (4, 2, True), (13, 10, True), (12, 10, False)],
)
def test_over_budget_margin(steps, expected, over):
    assert over_budget(steps, expected, 0.25, 2) is over


# -- learned budgets and compounding ------------------------------------------------------------


def _record(h, name, outcome="success", steps=3, errors=0, tools=0):
    return h.record(
        name, steps=steps, step_ok=steps + tools - errors, step_total=steps + tools, outcome=outcome
    )


def test_budget_is_the_median_of_successful_runs_after_the_minimum():
    h = TaskHistory(min_budget_runs=4, budget_window=5)
    for steps in (3, 9, 4):
        _record(h, "t", steps=steps)
    _record(h, "t", "failure", steps=50)
    assert h.budget("t") is None
    _record(h, "t", steps=4)
    assert h.budget("t") == 4  # median(3, 4, 4, 9) = 4
    for steps in (10, 10, 10):
        _record(h, "t", steps=steps)
    assert h.budget("t") == 10  # window of 5: 4, 4, 10, 10, 10


def test_even_median_rounds_up():
    h = TaskHistory(min_budget_runs=2)
    _record(h, "t", steps=3)
    _record(h, "t", steps=4)
    assert h.budget("t") == 4


def test_task_names_are_bounded():
    h = TaskHistory(max_names=3, min_budget_runs=1)
    for name in "abcd":
        _record(h, name)
    assert h.budget("a") is None and h.budget("d") == 3
    assert len(h.state_dict()["tasks"]) == 3


def test_state_round_trips_through_json_and_garbage_is_skipped():
    h = TaskHistory(min_budget_runs=2)
    for _ in range(3):
        _record(h, "t", steps=5, errors=1, tools=2)
    state = json.loads(json.dumps(h.state_dict()))
    restored = TaskHistory(min_budget_runs=2)
    restored.load_state_dict(state)
    assert restored.state_dict() == h.state_dict() and restored.budget("t") == 5
    state["tasks"]["bad"] = {"budget_runs": "x"}
    state["tasks"]["nan"] = {**state["tasks"]["t"], "task_fast": float("nan")}
    restored.load_state_dict(state)
    assert set(restored.state_dict()["tasks"]) == {"t"}
    restored.load_state_dict({"version": 99})
    assert set(restored.state_dict()["tasks"]) == {"t"}


def _phase(h, n, *, fail_every=0, fail_offsets=(), step_error_on_failure=False):
    rates = None
    for i in range(n):
        failed = fail_every and i % fail_every in fail_offsets
        rates = _record(
            h,
            "chain",
            "failure" if failed else "success",
            steps=2,
            tools=1,
            errors=1 if failed and step_error_on_failure else 0,
        )
    return rates


def test_compounding_flags_falling_end_to_end_with_flat_steps():
    h = TaskHistory()
    assert not _phase(h, 200).compounding
    rates = _phase(h, 60, fail_every=5, fail_offsets=(0, 1))
    assert rates.compounding
    assert rates.step_success == 1.0 and rates.task_success < 0.8


def test_no_compounding_flag_when_steps_fail_too():
    h = TaskHistory()
    _phase(h, 200)
    rates = _phase(h, 60, fail_every=5, fail_offsets=(0, 1), step_error_on_failure=True)
    assert not rates.compounding and rates.step_success < 0.95


def test_no_compounding_flag_for_a_steady_failure_rate():
    h = TaskHistory()
    flags = [
        _phase(h, 1, fail_every=1, fail_offsets=(0,) if i % 20 == 0 else ()).compounding
        for i in range(400)
    ]
    assert not any(flags)


# -- the stage on spans ---------------------------------------------------------------------------


class _Harness:
    def __init__(self, **kw):
        self.exporter = InMemorySpanExporter()
        self.stage = TrajectoryStage(**kw)
        self.pipeline = SignalPipeline([self.stage], downstream=SimpleSpanProcessor(self.exporter))
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.pipeline)
        self.tracer = self.provider.get_tracer("t")

    def llm(self, tools=(), ids=None, error=None, tokens=(10, 5)):
        span = self.tracer.start_span(
            "chat m",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_USAGE_INPUT_TOKENS: tokens[0],
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: tokens[1],
            },
        )
        if error:
            span.set_attribute(semconv.ERROR_TYPE, error)
        if tools:
            features.attach(
                span, CallFeatures(tool_calls=tuple(tools), tool_call_ids=tuple(ids or ()))
            )
        span.end()

    def tool(self, name, call_id=None, error=False):
        attrs = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: name,
        }
        if call_id:
            attrs[semconv.GEN_AI_TOOL_CALL_ID] = call_id
        with self.tracer.start_as_current_span(f"execute_tool {name}", attributes=attrs) as span:
            if error:
                span.set_status(Status(StatusCode.ERROR))

    def agent(self, name, **attrs):
        return self.tracer.start_as_current_span(
            f"invoke_agent {name}",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
                semconv.GEN_AI_AGENT_NAME: name,
                **attrs,
            },
        )

    def span(self, name):
        return {s.name: s for s in self.exporter.get_finished_spans()}[name]


def test_a_nested_agent_started_directly_is_its_own_task_and_counts_in_the_outer():
    h = _Harness()
    with h.agent("outer"):
        h.llm([("search", 1)], ["c1"])
        h.tool("search", "c1")
        with h.agent("inner"):
            with h.tracer.start_as_current_span("app step"):  # app spans in between do not matter
                h.llm([("search", 1)], ["c2"])
            h.tool("search", "c2")
            h.llm()
        h.llm()
    inner, outer = h.span("invoke_agent inner").attributes, h.span("invoke_agent outer").attributes
    assert (
        inner[semconv.TRAJECTORY_STEPS],
        inner[semconv.TRAJECTORY_TOOL_CALLS],
        inner[semconv.TRAJECTORY_REDUNDANT_CALLS],
    ) == (2, 1, 0)
    assert (
        outer[semconv.TRAJECTORY_STEPS],
        outer[semconv.TRAJECTORY_TOOL_CALLS],
        outer[semconv.TRAJECTORY_REDUNDANT_CALLS],
    ) == (4, 2, 1)
    assert (
        outer[semconv.TRAJECTORY_INPUT_TOKENS] == 40
        and outer[semconv.TRAJECTORY_OUTCOME] == "unknown"
    )
    assert outer[semconv.TRAJECTORY_DURATION] > 0
    assert h.stage.open_traces == 0
    assert semconv.TRAJECTORY_STEPS not in h.span("chat m").attributes


def test_an_implicit_root_is_not_a_task_when_the_trace_has_an_agent():
    h = _Harness()
    with h.tracer.start_as_current_span("POST /run"):
        with h.agent("a"):
            h.llm()
        h.llm()
        h.llm()
    assert semconv.TRAJECTORY_STEPS not in h.span("POST /run").attributes
    assert h.span("invoke_agent a").attributes[semconv.TRAJECTORY_STEPS] == 1


def test_declared_outcome_and_budget_attributes_are_read_from_the_agent_span():
    h = _Harness()
    with h.agent(
        "a", **{semconv.TRAJECTORY_EXPECTED_STEPS: 1, semconv.TRAJECTORY_OUTCOME: "abandoned"}
    ):
        h.llm()
        h.llm()
        h.llm()
    attrs = h.span("invoke_agent a").attributes
    assert attrs[semconv.TRAJECTORY_OUTCOME] == "abandoned"
    assert attrs[semconv.TRAJECTORY_BUDGET_SOURCE] == semconv.TRAJECTORY_BUDGET_DECLARED
    assert attrs[semconv.TRAJECTORY_BRUTE_FORCE] is True and attrs[
        semconv.TRAJECTORY_EFFICIENCY
    ] == pytest.approx(1 / 3)


def test_traces_without_genai_spans_keep_no_state():
    h = _Harness()
    with h.tracer.start_as_current_span("GET /health"):
        with h.tracer.start_as_current_span("db"):
            pass
    assert (
        h.stage.open_traces == 0
        and h.exporter.get_finished_spans()[1].attributes.get(semconv.TRAJECTORY_STEPS) is None
    )


def test_open_traces_are_capped_and_expire():
    h = _Harness(max_open_traces=5, trace_timeout_s=60)
    roots = [h.tracer.start_span(f"r{i}") for i in range(8)]
    from opentelemetry import trace

    for root in roots:
        with trace.use_span(root):
            h.llm()
    assert h.stage.open_traces == 5
    last_end = max(s.end_time for s in h.exporter.get_finished_spans())
    h.stage.tick(last_end + 59 * 10**9, lambda s: None)
    assert h.stage.open_traces == 5
    h.stage.tick(last_end + 61 * 10**9, lambda s: None)
    assert h.stage.open_traces == 0
    for root in roots:
        root.end()  # roots ending after eviction are harmless
    assert h.stage.open_traces == 0


def test_close_drops_open_state():
    h = _Harness()
    root = h.tracer.start_span("r")
    from opentelemetry import trace

    with trace.use_span(root):
        h.llm()
    assert h.stage.open_traces == 1
    h.pipeline.close_stages()
    assert h.stage.open_traces == 0


def test_tool_events_beyond_the_cap_are_counted_plainly():
    h = _Harness(max_events_per_task=4)
    with h.agent("a"):
        h.llm([("t", i) for i in range(3)])
        for _ in range(3):
            h.tool("t")
    attrs = h.span("invoke_agent a").attributes
    # 3 requests + 1 run are paired (3 calls); the 2 runs beyond the cap count as 2 more
    assert attrs[semconv.TRAJECTORY_TOOL_CALLS] == 5


def test_malformed_spans_do_not_break_the_stage():
    before = health.internal_errors().get("TrajectoryStage", 0)
    h = _Harness()
    with h.agent("a"):
        span = h.tracer.start_span(
            "chat",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_USAGE_INPUT_TOKENS: "many",
            },
        )
        features.attach(
            span, CallFeatures(tool_calls=(("t", 1), ("t", 2)), tool_call_ids=("only-one",))
        )
        span.end()
        with h.tracer.start_as_current_span(
            "tool",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                semconv.GEN_AI_TOOL_CALL_ID: 7,
            },
        ):
            pass
        h.llm()
    attrs = h.span("invoke_agent a").attributes
    assert attrs[semconv.TRAJECTORY_STEPS] == 2 and attrs[semconv.TRAJECTORY_TOOL_CALLS] == 3
    assert attrs[semconv.TRAJECTORY_INPUT_TOKENS] == 10
    assert health.internal_errors().get("TrajectoryStage", 0) == before


def test_state_dict_persists_learned_budgets_across_stages():
    h = _Harness(history=TaskHistory(min_budget_runs=2))
    for _ in range(2):
        with h.agent("a", **{semconv.TRAJECTORY_OUTCOME: "success"}):
            h.llm()
            h.llm()
    fresh = _Harness()
    fresh.stage.load_state_dict(json.loads(json.dumps(h.stage.state_dict())))
    fresh.stage.history.min_budget_runs = 2
    with fresh.agent("a"):
        for _ in range(5):
            fresh.llm()
    attrs = fresh.span("invoke_agent a").attributes
    assert attrs[semconv.TRAJECTORY_EXPECTED_STEPS] == 2
    assert attrs[semconv.TRAJECTORY_BUDGET_SOURCE] == semconv.TRAJECTORY_BUDGET_LEARNED
    assert attrs[semconv.TRAJECTORY_BRUTE_FORCE] is True


def test_compounding_rates_reach_the_root_span():
    h = _Harness(history=TaskHistory(min_tasks=20, fast_alpha=0.1, slow_alpha=0.01))
    for i in range(60):
        failed = i >= 40 and i % 2 == 0
        with h.agent("chain", **{semconv.TRAJECTORY_OUTCOME: "failure" if failed else "success"}):
            h.llm()
            h.llm()
    last = [s for s in h.exporter.get_finished_spans() if s.name == "invoke_agent chain"][
        -1
    ].attributes
    assert last[semconv.TRAJECTORY_STEP_SUCCESS_RATE] == 1.0
    assert last[semconv.TRAJECTORY_TASK_SUCCESS_RATE] < 0.9
    assert last[semconv.TRAJECTORY_COMPOUNDING] is True


def test_spans_built_from_plain_attribute_dicts_are_read_too():
    """As the collector builds them from OTLP: plain dicts, remote-flagged parents, no features."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext

    from frictionlens.processors.pipeline import SpanRecord

    def ctx(span_id, remote=False):
        return SpanContext(7, span_id, remote)

    stage = TrajectoryStage()
    agent = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: "remote",
    }
    spans = [
        ReadableSpan(
            "chat", ctx(2), ctx(1), attributes={semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT}
        ),
        ReadableSpan(
            "tool",
            ctx(3),
            ctx(1),
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                semconv.GEN_AI_TOOL_NAME: "t",
                semconv.ERROR_TYPE: "Boom",
            },
        ),
        ReadableSpan("invoke_agent remote", ctx(1), ctx(9, remote=True), attributes=agent),
    ]
    records = [SpanRecord(s) for s in spans]
    for record in records:
        stage.process(record, lambda s: None)
    root = records[-1].attributes
    assert (
        root[semconv.TRAJECTORY_STEPS],
        root[semconv.TRAJECTORY_TOOL_CALLS],
        root[semconv.TRAJECTORY_TOOL_ERRORS],
    ) == (1, 1, 1)
    assert stage.open_traces == 0
