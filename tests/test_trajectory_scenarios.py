"""The labelled agent runs: every counted attribute of every task root matches the ground truth."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from frictionlens import semconv
from tests.scenarios.trajectory_runs import SCENARIOS
from tests.scenarios.trajectory_spans import mismatches, replay

KINDS = {
    "efficient",
    "brute_force",
    "loop",
    "failure",
    "abandoned",
    "nested",
    "framework",
    "implicit",
    "learned_budget",
}


def test_the_suite_covers_every_kind_of_run():
    assert {s.kind for s in SCENARIOS} == KINDS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_task_roots_match_ground_truth(scenario):
    spans = replay(scenario)
    for top in scenario.runs:
        for run in top.nested():
            assert mismatches(run, spans[run.id]) == {}, run.id


def _by_name(name):
    return next(s for s in SCENARIOS if s.name == name)


def test_brute_force_run_is_flagged_and_the_efficient_one_is_not():
    brute = replay(_by_name("6 steps and 5 tool calls for a 4-step task"))["support-6"]
    efficient = replay(_by_name("one step over budget"))["support-5"]
    assert brute.attributes[semconv.TRAJECTORY_BRUTE_FORCE] is True
    assert brute.attributes[semconv.TRAJECTORY_EFFICIENCY] == pytest.approx(4 / 6)
    assert efficient.attributes[semconv.TRAJECTORY_BRUTE_FORCE] is False
    label = {e.name: e.attributes for e in brute.events}[semconv.GEN_AI_EVALUATION_RESULT]
    assert label[semconv.GEN_AI_EVALUATION_NAME] == semconv.EVALUATION_TRAJECTORY
    assert label[semconv.GEN_AI_EVALUATION_SCORE_LABEL] == semconv.TRAJECTORY_LABEL_BRUTE_FORCE
    assert label[semconv.GEN_AI_EVALUATION_SCORE_VALUE] == pytest.approx(4 / 6)


def test_nested_agents_metrics_follow_the_agent_grain():
    """The outer root counts the inner agent's calls; the gen_ai.invoke_agent.* metrics do not."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    spans = replay(_by_name("a research agent run as the planner's tool"), meter=meter)
    assert spans["planner"].attributes[semconv.TRAJECTORY_STEPS] == 6
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    points[
                        (
                            m.name,
                            p.attributes.get(semconv.GEN_AI_AGENT_NAME) or p.attributes.get("task"),
                        )
                    ] = p
    calls = semconv.METRIC_GEN_AI_INVOKE_AGENT_INFERENCE_CALLS
    tools = semconv.METRIC_GEN_AI_INVOKE_AGENT_TOOL_CALLS
    assert points[(calls, "planner")].sum == 3 and points[(calls, "researcher")].sum == 3
    assert points[(tools, "planner")].sum == 2 and points[(tools, "researcher")].sum == 2
    assert points[(semconv.METRIC_TRAJECTORY_STEPS, "planner")].sum == 6
    assert (
        points[(semconv.METRIC_TRAJECTORY_STEPS, "planner")].explicit_bounds
        == semconv.TRAJECTORY_STEP_BUCKETS
    )
    assert points[(semconv.METRIC_TRAJECTORY_OUTCOMES, "researcher")].value == 1
    assert (
        points[(semconv.METRIC_TRAJECTORY_OUTCOMES, "researcher")].attributes[
            semconv.METRIC_ATTR_BRUTE_FORCE
        ]
        == "true"
    )
    assert points[(semconv.METRIC_TRAJECTORY_EFFICIENCY, "planner")].sum == pytest.approx(4 / 6)
    assert points[(semconv.METRIC_TRAJECTORY_STEP_SUCCESS_RATE, "planner")].value == 1.0
    assert points[(semconv.METRIC_TRAJECTORY_TASK_SUCCESS_RATE, "planner")].value == 1.0
