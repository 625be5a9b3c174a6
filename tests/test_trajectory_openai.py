"""The labelled agent runs through the real OpenAI SDK, instrumented by instrument(), over HTTP."""

from __future__ import annotations

import pytest

from frictionlens import semconv
from frictionlens.localserver import LocalLLMServer
from tests.scenarios.trajectory_openai import replay, replayable
from tests.scenarios.trajectory_runs import SCENARIOS
from tests.scenarios.trajectory_spans import mismatches

REPLAYABLE = [s for s in SCENARIOS if replayable(s)]


@pytest.fixture(scope="module")
def server():
    with LocalLLMServer() as running:
        yield running


@pytest.mark.parametrize("scenario", REPLAYABLE, ids=[s.name for s in REPLAYABLE])
def test_task_roots_match_ground_truth_through_the_sdk(server, scenario):
    server.reset()
    spans = replay(scenario, server)
    for top in scenario.runs:
        for run in top.nested():
            assert mismatches(run, spans[run.id]) == {}, run.id


def test_the_sdk_calls_are_the_steps(server):
    """The steps counted are the instrumented SDK calls, not our own spans."""
    server.reset()
    scenario = next(s for s in SCENARIOS if s.name == "6 steps and 5 tool calls for a 4-step task")
    root = replay(scenario, server)["support-6"]
    assert server.request_count == 6
    assert root.attributes[semconv.TRAJECTORY_BRUTE_FORCE] is True
    assert root.attributes[semconv.TRAJECTORY_INPUT_TOKENS] == 6 * 120
