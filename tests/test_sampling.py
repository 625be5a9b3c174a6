"""Signal-based sampling: flagged traces and conversations kept whole, a fraction of the rest."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import SpanContext, TraceFlags

from frictionlens import semconv as S
from frictionlens.exporters import sampling
from frictionlens.exporters.sampling import SignalSampler

_ids = iter(range(1, 10**9))
_RESOURCE = Resource.get_empty()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * 10**9

    def time_ns(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(sampling, "time", c)
    return c


def setup(**options):
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    sampler = SignalSampler(
        SimpleSpanProcessor(exporter), meter=MeterProvider([reader]).get_meter("t"), **options
    )
    return sampler, exporter, reader


def span(trace_id: int, **attributes) -> ReadableSpan:
    ctx = SpanContext(trace_id, next(_ids), False, TraceFlags(TraceFlags.SAMPLED))
    return ReadableSpan(name="s", context=ctx, attributes=attributes, resource=_RESOURCE)


def out_traces(exporter) -> list[int]:
    return [s.context.trace_id for s in exporter.get_finished_spans()]


def test_a_flag_releases_its_trace_and_conversation(clock):
    sampler, exporter, _ = setup(rate=0.0)
    sampler.on_end(span(1, **{S.CONVERSATION_ID: "c"}))  # turn 1, its own trace
    sampler.on_end(span(2))  # another trace, other conversation
    sampler.on_end(span(3))  # the app's request span of turn 2, before its LLM call
    assert out_traces(exporter) == [] and sampler.stats()["held"] == 3
    clock.now += 60 * 10**9
    sampler.on_end(span(3, **{S.CONVERSATION_ID: "c", S.REVIEW_NEEDED: True}))
    assert sorted(out_traces(exporter)) == [1, 3, 3]
    sampler.on_end(span(4, **{S.CONVERSATION_ID: "c", S.REVIEW_NEEDED: False}))  # later turn: kept
    sampler.on_end(span(3))  # a late span of the flagged trace: kept
    assert sorted(out_traces(exporter)) == [1, 3, 3, 3, 4]
    stats = sampler.stats()
    assert (stats[S.SAMPLING_RELEASED], stats[S.SAMPLING_KEPT_FLAGGED], stats["held"]) == (2, 3, 1)


def test_unflagged_spans_are_dropped_after_the_hold_time(clock):
    sampler, exporter, reader = setup(rate=0.0, hold_s=300)
    sampler.on_end(span(1))
    clock.now += 299 * 10**9
    sampler.force_flush()
    assert sampler.stats()["held"] == 1
    clock.now += 2 * 10**9
    sampler.force_flush()
    sampler.on_end(span(1, **{S.REVIEW_NEEDED: True}))  # too late for the dropped span
    assert out_traces(exporter) == [1]
    assert sampler.stats()[S.SAMPLING_DROPPED] == 1
    points = {
        p.attributes[S.METRIC_ATTR_DECISION]: p.value
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == S.METRIC_SAMPLING_SPANS
        for p in m.data.data_points
    }
    assert points == {S.SAMPLING_DROPPED: 1, S.SAMPLING_KEPT_FLAGGED: 1}


def test_the_sampled_fraction_is_deterministic_and_agrees_with_trace_id_ratio():
    sampler, exporter, _ = setup(rate=0.1)
    head = TraceIdRatioBased(0.1)
    rng = random.Random(3)
    trace_ids = [rng.getrandbits(128) for _ in range(5000)]
    for trace_id in trace_ids:
        sampler.on_end(span(trace_id))
    kept = set(out_traces(exporter))
    assert 0.085 < len(kept) / len(trace_ids) < 0.115
    assert kept == {
        t
        for t in trace_ids
        if head.should_sample(None, t, "s").decision == Decision.RECORD_AND_SAMPLE
    }


def test_rate_one_keeps_everything_without_holding():
    sampler, exporter, _ = setup(rate=1.0)
    for trace_id in range(1, 50):
        sampler.on_end(span(trace_id))
    assert len(out_traces(exporter)) == 49 and sampler.stats()["held"] == 0


def test_holding_is_bounded(clock):
    sampler, exporter, _ = setup(rate=0.0, max_spans=10, max_keys=3)
    for trace_id in range(1, 31):
        sampler.on_end(span(trace_id, **{S.CONVERSATION_ID: f"c{trace_id}"}))
    stats = sampler.stats()
    assert stats["held"] == 10 and stats[S.SAMPLING_DROPPED_OVERFLOW] == 20
    assert len(sampler._held_by_conversation) == 10
    for trace_id in range(100, 110):
        sampler.on_end(span(trace_id, **{S.REVIEW_NEEDED: True}))
    assert len(sampler._kept_traces) == 3


def test_shutdown_drops_what_is_still_held(clock):
    sampler, exporter, _ = setup(rate=0.0)
    sampler.on_end(span(1))
    sampler.on_end(span(2))
    sampler.shutdown()
    assert out_traces(exporter) == [] and sampler.stats()[S.SAMPLING_DROPPED] == 2


def test_invalid_rate():
    with pytest.raises(ValueError):
        SignalSampler(SimpleSpanProcessor(InMemorySpanExporter()), rate=1.5)
