"""The export path under backend faults: the app is never blocked, every lost span is counted
(``frictionlens.export.dropped``), and export resumes once the backend is back.

A short version of ``bench/faults.py``: a few seconds per fault, a small queue so it overflows.
"""

from __future__ import annotations

import time

import openai
import pytest

import frictionlens
from frictionlens import runtime
from frictionlens import semconv as sc
from frictionlens.exporters.delivery import EXPORTED, QUEUED, CountedBatchSpanProcessor
from frictionlens.localserver import LocalLLMServer
from tests.faults import FAULTS, FaultyBackend

FAULT_S = 2.5
BLOCKED_S = 0.5  # generous: an export stage that waited on the backend would take >= 1 s
ENV = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "1.5",
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_BSP_MAX_QUEUE_SIZE": "32",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "8",
    "OTEL_METRIC_EXPORT_INTERVAL": "500",
}


@pytest.fixture(scope="module")
def llm():
    with LocalLLMServer() as srv:
        yield srv


@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_backend_costs_the_app_nothing_and_losses_are_counted(
    llm, otlp_receiver, monkeypatch, fault
):
    with FaultyBackend(otlp_receiver.http_url, slow_s=1.0) as backend:
        for name, value in {**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": backend.url}.items():
            monkeypatch.setenv(name, value)
        frictionlens.instrument(exporter="otlp", sample_rate=1.0, providers=["openai"])
        export = runtime.installed().pipeline.downstream
        assert isinstance(export, CountedBatchSpanProcessor)
        slowest = [0.0]
        on_end = export.on_end

        def timed_on_end(span):
            start = time.perf_counter()
            on_end(span)
            slowest[0] = max(slowest[0], time.perf_counter() - start)

        monkeypatch.setattr(export, "on_end", timed_on_end)
        client = openai.OpenAI(base_url=llm.openai_base_url, api_key="k", max_retries=0)
        n = 0

        def call() -> str:
            nonlocal n
            n += 1
            return client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"q{n}"}]
            ).id

        for _ in range(5):
            call()
        backend.set_mode(fault)
        longest_call, deadline = 0.0, time.monotonic() + FAULT_S
        while time.monotonic() < deadline:
            start = time.perf_counter()
            call()
            longest_call = max(longest_call, time.perf_counter() - start)
        backend.set_mode("ok")
        after = {call() for _ in range(5)}
        deadline = time.monotonic() + 30
        while not after <= {
            s["attributes"].get(sc.GEN_AI_RESPONSE_ID) for s in otlp_receiver.spans()
        }:
            assert time.monotonic() < deadline, "export did not resume"
            time.sleep(0.05)
        frictionlens.uninstrument()  # flushes spans and metrics

    assert slowest[0] < BLOCKED_S and longest_call < backend.slow_s, (slowest, longest_call)
    assert fault == "down" or backend.requests[fault] > 0
    received = {s["span_id"]: s for s in otlp_receiver.spans()}
    stats = export.stats()
    dropped = stats.get(sc.EXPORT_DROPPED_QUEUE_FULL, 0) + stats.get(sc.EXPORT_DROPPED_FAILED, 0)
    assert dropped > 0, stats  # the fault lasted long enough to lose something
    assert len(received) == stats[QUEUED] - dropped, stats
    points = otlp_receiver.wait_for_metric(sc.METRIC_EXPORT_DROPPED)
    reported = {
        p["attributes"][sc.METRIC_ATTR_REASON]: p["value"] for p in points
    }  # cumulative: last wins
    assert reported == {k: v for k, v in stats.items() if k not in (QUEUED, EXPORTED) and v}
    assert stats[EXPORTED] == len(received)


@pytest.mark.parametrize("helper_thread", [True, False], ids=["helper thread", "no new thread"])
def test_shutdown_waits_at_most_its_timeout_and_counts_what_it_could_not_send(
    monkeypatch, caplog, helper_thread
):
    """A backend that is down at shutdown: 10 spans in batches of 2, an exporter that would
    retry each batch for 10 s; shutdown gives up after 1 s, counts the 10 spans and says so
    once. Without a helper thread (Python 3.12.1 refuses them in exit hooks) it waits the
    same."""
    import threading

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, TraceFlags

    from tests.conftest import free_port

    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", timeout=10)
    export = CountedBatchSpanProcessor(
        exporter, shutdown_timeout_s=1.0, max_export_batch_size=2, schedule_delay_millis=60_000
    )

    def span(i: int) -> ReadableSpan:
        ctx = SpanContext(1, i, False, TraceFlags(TraceFlags.SAMPLED))
        return ReadableSpan(name="s", context=ctx, resource=Resource.get_empty())

    for i in range(10):
        export.on_end(span(i + 1))
    if not helper_thread:

        def refuse(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")

        monkeypatch.setattr(threading.Thread, "start", refuse)
    start = time.monotonic()
    export.shutdown()
    took = time.monotonic() - start
    assert took < 5, took  # one batch alone would retry for 10 s
    stats = export.stats()
    lost = sum(stats.get(r, 0) for r in (sc.EXPORT_DROPPED_FAILED, sc.EXPORT_DROPPED_SHUTDOWN))
    assert (stats[QUEUED], stats.get(EXPORTED, 0), lost) == (10, 0, 10), stats
    said = [r.getMessage() for r in caplog.records if "not exported at shutdown" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("frictionlens: 10 span(s)"), said
    export.on_end(span(99))
    assert export.stats()[sc.EXPORT_DROPPED_SHUTDOWN] >= 1  # a span after shutdown: counted
