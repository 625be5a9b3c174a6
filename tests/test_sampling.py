"""Signal-based sampling: flagged traces and conversations kept whole, a known fraction of the
rest, every kept span marked with the probability it was kept at (OpenTelemetry ``th``)."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

from frictionlens import semconv as S
from frictionlens.exporters import sampling
from frictionlens.exporters.sampling import SignalSampler

_ids = iter(range(1, 10**9))
_RESOURCE = Resource.get_empty()
LOW_56 = (1 << 56) - 1


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


def span(
    trace_id: int,
    name: str = "s",
    trace_state: TraceState | None = None,
    events: tuple[Event, ...] = (),
    **attributes,
) -> ReadableSpan:
    ctx = SpanContext(trace_id, next(_ids), False, TraceFlags(TraceFlags.SAMPLED), trace_state)
    return ReadableSpan(
        name=name, context=ctx, attributes=attributes, resource=_RESOURCE, events=events
    )


def out_traces(exporter) -> list[int]:
    return [s.context.trace_id for s in exporter.get_finished_spans()]


def th(s: ReadableSpan) -> str | None:
    """The ``th`` value a span was exported with."""
    for member in (s.context.trace_state.get("ot") or "").split(";"):
        if member.startswith("th:"):
            return member[3:]
    return None


def kept_by_randomness() -> int:
    """A trace id whose low 56 bits fall inside any sampled fraction."""
    return (1 << 100) | LOW_56


def dropped_by_randomness() -> int:
    return 1 << 100  # randomness 0: below any threshold but 0


def test_threshold_encoding_follows_the_opentelemetry_tracestate_spec():
    assert sampling.encode_threshold(sampling.threshold(1.0)) == "0"
    assert sampling.encode_threshold(sampling.threshold(0.5)) == "8"
    assert sampling.encode_threshold(sampling.threshold(0.25)) == "c"
    assert sampling.encode_threshold(sampling.threshold(0.1)) == "e6666666666666"
    for rate in (0.5, 0.25, 0.1, 0.01, 1e-6):
        t = sampling.threshold(rate)
        assert abs(sampling.probability(t) - rate) <= 2**-56
        assert sampling.adjusted_count(f"ot=th:{sampling.encode_threshold(t)}") == pytest.approx(
            1 / rate
        )
    assert sampling.adjusted_count("") == 1.0
    assert sampling.adjusted_count("ot=th:0") == 1.0
    assert sampling.adjusted_count("vendor=x,ot=rv:00000000000001;th:c") == 4.0
    for invalid in ("ot=th:zz", "ot=th:123456789abcdef", "ot=th:", "ot=rv:12"):
        assert sampling.adjusted_count(invalid) == 1.0


def test_a_flag_releases_its_trace_and_conversation_at_probability_one(clock):
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
    assert {th(s) for s in exporter.get_finished_spans()} == {"0"}
    stats = sampler.stats()
    assert (stats[S.SAMPLING_RELEASED], stats[S.SAMPLING_KEPT_FLAGGED], stats["held"]) == (2, 3, 1)


def test_a_span_inside_the_fraction_waits_for_its_conversation(clock):
    """Sampled at once with th:T, turn 1 of a conversation flagged at turn 2 would count 1/rate
    calls; held, it is kept with the flag, at probability 1."""
    sampler, exporter, _ = setup(rate=0.1)
    inside = kept_by_randomness()
    sampler.on_end(span(inside, **{S.CONVERSATION_ID: "c"}))
    assert out_traces(exporter) == []
    sampler.on_end(span(5, **{S.CONVERSATION_ID: "c", S.REVIEW_NEEDED: True}))
    assert [th(s) for s in exporter.get_finished_spans()] == ["0", "0"]


def test_held_spans_are_decided_by_randomness_after_the_hold_time(clock):
    sampler, exporter, reader = setup(rate=0.1, hold_s=300)
    sampler.on_end(span(dropped_by_randomness()))
    sampler.on_end(span(kept_by_randomness()))
    clock.now += 299 * 10**9
    sampler.force_flush()
    assert sampler.stats()["held"] == 2
    clock.now += 2 * 10**9
    sampler.force_flush()
    assert out_traces(exporter) == [kept_by_randomness()]
    assert [th(s) for s in exporter.get_finished_spans()] == ["e6666666666666"]
    sampler.on_end(span(dropped_by_randomness(), **{S.REVIEW_NEEDED: True}))  # too late
    assert len(out_traces(exporter)) == 2
    assert sampler.stats()[S.SAMPLING_DROPPED] == 1
    points = {
        p.attributes[S.METRIC_ATTR_DECISION]: p.value
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == S.METRIC_SAMPLING_SPANS
        for p in m.data.data_points
    }
    assert points == {
        S.SAMPLING_DROPPED: 1,
        S.SAMPLING_KEPT_SAMPLED: 1,
        S.SAMPLING_KEPT_FLAGGED: 1,
    }


def test_th_matches_the_probability_applied():
    """Every span kept by chance carries th = T with randomness >= T; every dropped one had
    randomness < T; and the kept share is the rate."""
    rate = 0.1
    sampler, exporter, _ = setup(rate=rate)
    rng = random.Random(3)
    trace_ids = [rng.getrandbits(128) for _ in range(20_000)]
    for trace_id in trace_ids:
        sampler.on_end(span(trace_id))
    sampler.shutdown()
    threshold = sampling.threshold(rate)
    out = exporter.get_finished_spans()
    assert {th(s) for s in out} == {sampling.encode_threshold(threshold)}
    kept = {s.context.trace_id for s in out}
    assert kept == {t for t in trace_ids if t & LOW_56 >= threshold}
    assert abs(len(kept) / len(trace_ids) - rate) < 0.006  # 3 standard errors
    assert sampling.probability(threshold) == pytest.approx(rate, abs=2**-56)


def test_decisions_agree_with_the_sdks_consistent_probability_sampler():
    composite = pytest.importorskip("opentelemetry.sdk.trace._sampling_experimental")
    rate = 0.25
    head = composite.composite_sampler(composite.composable_traceid_ratio_based(rate))
    sampler, exporter, _ = setup(rate=rate)
    rng = random.Random(5)
    trace_ids = [rng.getrandbits(128) for _ in range(3000)]
    for trace_id in trace_ids:
        sampler.on_end(span(trace_id))
    sampler.shutdown()
    ours = {
        s.context.trace_id: s.context.trace_state.get("ot") for s in exporter.get_finished_spans()
    }
    theirs = {}
    for t in trace_ids:
        result = head.should_sample(None, t, "s")
        if result.decision == Decision.RECORD_AND_SAMPLE:
            theirs[t] = result.trace_state.get("ot")
    assert ours == theirs


def test_an_upstream_threshold_and_randomness_are_honoured():
    sampler, exporter, _ = setup(rate=0.1)
    half = TraceState([("ot", "th:8")])  # sampled at 50% upstream
    sampler.on_end(span(7, name="flagged", trace_state=half, **{S.REVIEW_NEEDED: True}))
    explicit = TraceState([("vendor", "x"), ("ot", f"rv:{LOW_56:014x};th:8")])
    sampler.on_end(span(dropped_by_randomness(), name="rv", trace_state=explicit))
    sampler.shutdown()
    flagged, by_rv = exporter.get_finished_spans()
    assert th(flagged) == "8"  # kept with probability 1 here: 1/2 overall
    assert th(by_rv) == "e6666666666666" and by_rv.context.trace_state.get("vendor") == "x"
    assert "rv:" in by_rv.context.trace_state.get("ot")  # the rest of the entry stays


def test_summaries_are_always_kept_and_end_the_wait_of_their_conversation(clock):
    sampler, exporter, _ = setup(rate=0.1)
    inside, outside = kept_by_randomness(), dropped_by_randomness()
    sampler.on_end(span(inside, **{S.CONVERSATION_ID: "a"}))
    sampler.on_end(span(outside, **{S.CONVERSATION_ID: "a"}))
    sampler.on_end(span(outside, name=S.CONVERSATION_SPAN, **{S.CONVERSATION_ID: "a"}))
    names = [(s.name, th(s)) for s in exporter.get_finished_spans()]
    assert names == [(S.CONVERSATION_SPAN, "0"), ("s", "e6666666666666")]
    assert sampler.stats()["held"] == 0 and sampler.stats()[S.SAMPLING_DROPPED] == 1


def test_a_drift_alert_keeps_its_trace():
    sampler, exporter, _ = setup(rate=0.0)
    alert = Event(S.DRIFT_EVENT, {S.DRIFT_FEATURE: "output_chars"})
    sampler.on_end(span(9))
    sampler.on_end(span(9, events=(alert,)))
    assert [th(s) for s in exporter.get_finished_spans()] == ["0", "0"]


def test_adjusted_counts_estimate_the_whole_without_bias():
    """20,000 two-turn conversations, a quarter flagged at turn 2, sampled at 10%: the kept
    spans' adjusted counts add up to the 40,000 calls (they would count about 11% too many
    if spans inside the fraction were exported before their conversation's flag)."""
    sampler, exporter, _ = setup(rate=0.1)
    rng = random.Random(11)
    for n in range(20_000):
        conv = {S.CONVERSATION_ID: f"c{n}"}
        flagged = n % 4 == 0
        sampler.on_end(span(rng.getrandbits(128), **conv))
        sampler.on_end(span(rng.getrandbits(128), **conv, **{S.REVIEW_NEEDED: flagged}))
        sampler.on_end(span(rng.getrandbits(128), name=S.CONVERSATION_SPAN, **conv))
    sampler.shutdown()
    calls = [s for s in exporter.get_finished_spans() if s.name == "s"]
    estimate = sum(sampling.adjusted_count(s.context.trace_state.to_header()) for s in calls)
    assert abs(estimate / 40_000 - 1) < 0.04  # standard error about 1.3%
    assert sum(1 for s in calls if th(s) == "0") == 2 * 5_000  # flagged conversations whole


def test_rate_one_keeps_everything_without_holding():
    sampler, exporter, _ = setup(rate=1.0)
    for trace_id in range(1, 50):
        sampler.on_end(span(trace_id))
    assert len(out_traces(exporter)) == 49 and sampler.stats()["held"] == 0
    assert {th(s) for s in exporter.get_finished_spans()} == {"0"}


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


def test_shutdown_decides_what_is_still_held(clock):
    sampler, exporter, _ = setup(rate=0.1)
    sampler.on_end(span(dropped_by_randomness()))
    sampler.on_end(span(kept_by_randomness()))
    sampler.shutdown()
    assert out_traces(exporter) == [kept_by_randomness()]
    assert sampler.stats()[S.SAMPLING_DROPPED] == 1


def test_invalid_rate():
    with pytest.raises(ValueError):
        setup(rate=1.5)


def test_a_span_of_a_conversation_waits_as_long_as_a_conversation_may(clock):
    sampler, exporter, _ = setup(rate=0.0, hold_s=300, conversation_hold_s=1800)
    sampler.on_end(span(1, **{S.CONVERSATION_ID: "c"}))
    sampler.on_end(span(2))
    clock.now += 301 * 10**9
    sampler.force_flush()
    assert sampler.stats()["held"] == 1  # the span without a conversation was decided
    clock.now += 1200 * 10**9
    sampler.on_end(span(3, **{S.CONVERSATION_ID: "c", S.REVIEW_NEEDED: True}))  # 25 min later
    assert sorted(out_traces(exporter)) == [1, 3]
