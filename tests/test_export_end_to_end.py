"""An app that only calls instrument(), run as a real process: OTLP to a real receiver, or the local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from frictionlens import semconv as sc
from frictionlens.exporters.filestore import read_metrics, read_traces
from frictionlens.localserver import LocalLLMServer
from tests.conftest import run_python

ROOT = Path(__file__).resolve().parents[1]


def run_app(script: str, args: list[str], env: dict[str, str], cwd: Path) -> str:
    return run_python([str(ROOT / "examples" / script), *args], env, cwd, timeout=120).stdout


@pytest.fixture
def llm():
    with LocalLLMServer() as srv:
        yield {
            "OPENAI_BASE_URL": srv.openai_base_url,
            "OPENAI_API_KEY": "test",
            "FRICTIONLENS_SAMPLE_RATE": "1",
        }


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_and_metrics_reach_a_real_otlp_receiver(llm, otlp_receiver, tmp_path, protocol):
    env = {**llm, **otlp_receiver.env(protocol), "OTEL_SERVICE_NAME": "chat-e2e"}
    run_app("chat_app.py", ["Hello", "And then?"], env, tmp_path)
    spans = otlp_receiver.wait_for_spans(lambda s: s["name"].startswith("chat "))
    calls = [s for s in spans if s["name"].startswith("chat ")]
    assert len(calls) == 2
    for s in calls:
        a = s["attributes"]
        assert s["kind"] == "CLIENT" and s["resource"]["service.name"] == "chat-e2e"
        for key in (
            sc.GEN_AI_PROVIDER_NAME,
            sc.GEN_AI_RESPONSE_ID,
            sc.GEN_AI_USAGE_INPUT_TOKENS,
            sc.OUTPUT_CHARS,
            sc.OUTPUT_FORMAT_VALID,
            sc.OUTPUT_PREAMBLE,
            sc.OUTPUT_REFUSAL,
            sc.OUTPUT_TRUNCATED,
            sc.RETRY_COUNT,
            sc.CONVERSATION_ID,
            sc.CONVERSATION_TURN,
        ):
            assert key in a, key
    assert [c["attributes"][sc.CONVERSATION_TURN] for c in calls] == [1, 2]
    assert calls[0]["attributes"][sc.CONVERSATION_ID] == calls[1]["attributes"][sc.CONVERSATION_ID]
    assert sc.GEN_AI_CONVERSATION_ID not in calls[0]["attributes"]  # never invented
    points = otlp_receiver.wait_for_metric(sc.METRIC_GEN_AI_OPERATION_DURATION)
    assert points and points[-1]["type"] == "histogram" and points[-1]["count"] >= 1
    assert otlp_receiver.wait_for_metric(sc.METRIC_OUTPUT_LENGTH)
    summaries = [s for s in otlp_receiver.spans() if s["name"] == sc.CONVERSATION_SPAN]
    assert len(summaries) == 1  # the conversation closed at exit


def test_embedded_default_writes_the_local_store(llm, tmp_path):
    data = tmp_path / "store"
    run_app("chat_app.py", ["Hello"], {**llm, "FRICTIONLENS_DATA_DIR": str(data)}, tmp_path)
    spans = [
        sp
        for req in read_traces(data)
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for sp in ss.spans
    ]
    assert any(sp.name.startswith("chat ") for sp in spans)
    metrics = {
        m.name
        for req in read_metrics(data)
        for rm in req.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert sc.METRIC_GEN_AI_TOKEN_USAGE in metrics
    assert (data / "salt").exists()


def test_tool_agent_example_runs_against_the_local_server(llm, tmp_path):
    out = run_app(
        "tool_agent.py",
        ["Weather in Paris?"],
        {**llm, "FRICTIONLENS_DATA_DIR": str(tmp_path / "d")},
        tmp_path,
    )
    assert out.strip()
