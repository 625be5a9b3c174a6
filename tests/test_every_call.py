"""Every call counted: an app that only calls ``instrument()`` and exits normally, run as a
real process (``tests/every_call_app.py``: 60 two-turn conversations, 15 with an explicit
correction) against the local server, exporting to a real OTLP receiver or the local store.

With every default, every call's span and metric point leaves the process, in the order the
app made them, however it ends; ``frictionlens report`` counts 120 calls and a 12.5% friction
rate. Sampled at 10%, the report's estimates stay near the truth and every kept span's ``th``
is the probability its trace was kept at. A backend that is down at exit costs the exit at
most the export timeout, and the loss is logged.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from frictionlens import semconv as sc
from frictionlens.collector.decode import metric_points, span_dicts
from frictionlens.exporters import sampling
from frictionlens.exporters.filestore import TRACES_FILE, read_metrics, read_traces
from frictionlens.exporters.report import metric_total
from frictionlens.localserver import LocalLLMServer
from tests.conftest import free_port, run_python

ROOT = Path(__file__).resolve().parents[1]
CONVERSATIONS, CORRECTED = 60, 15
CALLS = 2 * CONVERSATIONS
FRICTION_RATE = CORRECTED / CALLS
RATE = 0.1
SEEDS = (1, 2, 3, 4, 5)
_DURATION = (sc.METRIC_GEN_AI_OPERATION_DURATION,)


@pytest.fixture(scope="module")
def llm():
    with LocalLLMServer() as server:
        yield server


def run_app(
    llm: LocalLLMServer, where: Path, env: dict[str, str], *args: str
) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    """Run the app to its end; (each call's truth, the finished process)."""
    where.mkdir(parents=True, exist_ok=True)
    truth = where / "truth.jsonl"
    env = {
        "OPENAI_BASE_URL": llm.openai_base_url,
        "OPENAI_API_KEY": "local",
        "FRICTIONLENS_DATA_DIR": str(where / "store"),
        **env,
    }
    done = run_python(["-m", "tests.every_call_app", str(truth), *args], env, ROOT)
    return [json.loads(line) for line in truth.read_text().splitlines()], done


def store_spans(store: Path) -> list[dict[str, Any]]:
    return [s for req in read_traces(store) for s in span_dicts(req)]


def store_metrics(store: Path) -> list[dict[str, Any]]:
    return [p for req in read_metrics(store) for p in metric_points(req)]


def calls_of(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if s["attributes"].get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT]


def response_ids(spans: list[dict[str, Any]]) -> list[str]:
    return [s["attributes"][sc.GEN_AI_RESPONSE_ID] for s in calls_of(spans)]


def report_json(path: Path) -> dict[str, Any]:
    """``frictionlens report --json``, as a user runs it."""
    return json.loads(run_python(["-m", "frictionlens.cli", "report", str(path), "--json"]).stdout)


def th(span: dict[str, Any]) -> str | None:
    for member in span["trace_state"].partition("ot=")[2].split(",")[0].split(";"):
        if member.startswith("th:"):
            return member[3:]
    return None


# -- with every default ------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_every_call_reaches_a_real_otlp_receiver(llm, otlp_receiver, tmp_path, protocol):
    truth, _ = run_app(llm, tmp_path, otlp_receiver.env(protocol))
    spans = otlp_receiver.wait_for_spans(CALLS + CONVERSATIONS, timeout=5)
    assert response_ids(spans) == [t["response_id"] for t in truth]  # all, in the app's order
    assert len(truth) == CALLS
    assert sum(s["name"] == sc.CONVERSATION_SPAN for s in spans) == CONVERSATIONS
    assert all(s["trace_state"] == "" for s in spans)  # nothing sampled, nothing to weigh
    assert metric_total(otlp_receiver.metrics(), _DURATION) == {"*": CALLS}


@pytest.fixture(scope="module")
def default_run(llm, tmp_path_factory) -> tuple[list[dict[str, Any]], Path]:
    where = tmp_path_factory.mktemp("default")
    truth, _ = run_app(llm, where, {})
    return truth, where / "store"


@pytest.mark.parametrize("ending", ["return", "sys.exit", "open-stream", "threads"])
def test_every_call_reaches_the_local_store(llm, tmp_path, ending, default_run):
    truth, store = (
        default_run
        if ending == "return"
        else (*run_app(llm, tmp_path, {}, "--exit", ending)[:1], tmp_path / "store")
    )
    spans = store_spans(store)
    calls = calls_of(spans)
    ids = response_ids(spans)
    if ending == "threads":  # each thread's calls in the order it made them
        assert sorted(ids) == sorted(t["response_id"] for t in truth)
        for thread in range(4):
            made = [t["response_id"] for t in truth if t["thread"] == thread]
            assert [i for i in ids if i in set(made)] == made
    else:
        assert ids[:CALLS] == [t["response_id"] for t in truth]
    extra = ending == "open-stream"  # the stream the app still held: ended, as abandoned
    assert len(calls) == CALLS + extra
    if extra:
        assert calls[-1]["attributes"][sc.STREAM_ABANDONED] is True
    assert sum(s["name"] == sc.CONVERSATION_SPAN for s in spans) == CONVERSATIONS + extra
    assert metric_total(store_metrics(store), _DURATION) == {"*": CALLS + extra}


def test_the_report_of_an_unsampled_store_is_exact(default_run):
    _, store = default_run
    doc = report_json(store)
    assert (doc["calls"], doc["conversations"]) == (CALLS, CONVERSATIONS)
    assert doc["friction_rate"] == FRICTION_RATE
    assert doc["friction"] == {"correction": CORRECTED} and len(doc["review"]) == CORRECTED
    assert doc["sampling"] == {}


# -- sampling on ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sampled_runs(llm, tmp_path_factory) -> dict[int, tuple[list[dict[str, Any]], Path]]:
    runs = {}
    for seed in SEEDS:
        where = tmp_path_factory.mktemp(f"sampled{seed}")
        truth, _ = run_app(llm, where, {"FRICTIONLENS_SAMPLE_RATE": str(RATE)}, "--seed", str(seed))
        runs[seed] = truth, where / "store"
    return runs


@pytest.mark.parametrize("seed", SEEDS)
def test_the_report_of_a_sampled_store_estimates_the_whole(sampled_runs, seed):
    _, store = sampled_runs[seed]
    assert len(calls_of(store_spans(store))) < CALLS  # sampled indeed
    for source in (store, store / TRACES_FILE):  # with the metrics, and the spans alone
        doc = report_json(source)
        assert abs(doc["calls"] - CALLS) <= 0.3 * CALLS, (source, doc["calls"])
        assert abs(doc["friction_rate"] - FRICTION_RATE) <= 0.05, (source, doc["friction_rate"])
        assert doc["conversations"] == CONVERSATIONS and len(doc["review"]) == CORRECTED
        assert doc["sampling"]["sample_rates"] == [RATE]


@pytest.mark.parametrize("seed", SEEDS)
def test_th_matches_the_probability_applied(sampled_runs, seed):
    truth, store = sampled_runs[seed]
    spans = store_spans(store)
    threshold = sampling.threshold(RATE)
    kept = {s["attributes"][sc.GEN_AI_RESPONSE_ID]: s for s in calls_of(spans)}
    for t in truth:
        randomness = int(t["trace_id"], 16) & ((1 << 56) - 1)
        span = kept.get(t["response_id"])
        if span is not None and any(e["name"] == sc.DRIFT_EVENT for e in span["events"]):
            assert th(span) == "0", t  # a drift alarm (from the 32nd call on): kept, at 1
        elif t["corrected"]:  # a flagged conversation: kept whole, at probability 1
            assert span is not None and th(span) == "0", t
        elif randomness >= threshold:  # inside the sampled fraction: kept, saying so
            assert span is not None and th(span) == sampling.encode_threshold(threshold), t
        else:
            assert span is None, t
    assert {th(s) for s in spans if s["name"] == sc.CONVERSATION_SPAN} == {"0"}
    assert abs(sampling.probability(threshold) - RATE) < 1e-15


# -- a backend down at exit ----------------------------------------------------------------
def test_a_backend_down_at_exit_costs_at_most_the_timeout_and_the_loss_is_logged(llm, tmp_path):
    timeout_s = 3.0
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TIMEOUT": str(timeout_s),
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",  # several batches: each would wait its own timeout
    }
    truth, done = run_app(llm, tmp_path, env, "--conversations", "10", "--corrected", "2")
    ended = time.time()
    returned = float(re.search(r"returned (\S+)", done.stdout).group(1))
    # the interpreter's own teardown takes up to 2 s here under load; spans and metrics
    # waiting one after the other, or batch after batch, would take 6 s and more
    assert ended - returned < timeout_s + 4.0, ended - returned
    lost = re.findall(
        r"frictionlens: (\d+) span\(s\) not exported at shutdown .* after waiting ([\d.]+) s",
        done.stderr,
    )
    assert len(lost) == 1, done.stderr  # once
    spans, waited = int(lost[0][0]), float(lost[0][1])
    assert spans == len(truth) + 10  # every call and conversation summary
    assert waited <= timeout_s + 0.5
