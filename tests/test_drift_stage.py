"""The drift stage inside a SignalPipeline: spans in, enriched spans and metrics out."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frictionlens import semconv
from frictionlens.features import record as features
from frictionlens.features.record import CallFeatures
from frictionlens.features.vectors import content_vector
from frictionlens.processors.drift import DriftStage
from frictionlens.processors.drift.design import FULL_BASELINE as WARMUP
from frictionlens.processors.pipeline import SignalPipeline

#: span times start now: the pipeline's own ticker expires streams idle for a week by the wall clock
T0 = time.time_ns()
WORDS = (
    "rotate the logs daily with logrotate keep seven compressed files and check the service "
    "still writes to its log after the rule runs at night"
).split()


class Sim:
    """LLM call spans as the OpenAI instrumentation makes them, for a few streams."""

    def __init__(self, stage: DriftStage, seed: int = 0) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(
            SignalPipeline([stage], downstream=SimpleSpanProcessor(self.exporter))
        )
        self.tracer = provider.get_tracer("test")
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def call(
        self,
        *,
        model="gpt-4o",
        route=None,
        digest=7,
        fingerprint="fp_a",
        changed=False,
        operation="chat",
        text=True,
    ) -> None:
        rng = self.rng
        self.n += 1
        start = T0 + self.n * 10**9
        chars = int(np.exp(rng.normal(6.0, 0.3)) * (1.6 if changed else 1.0))
        tokens = max(1, chars // 4)
        ttfc = float(np.exp(rng.normal(-1.5, 0.2)))
        latency = ttfc + tokens / 60.0 * float(np.exp(rng.normal(0.0, 0.1)))
        invalid = rng.random() < (0.9 if changed else 0.01)
        attrs = {
            semconv.GEN_AI_OPERATION_NAME: operation,
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.GEN_AI_REQUEST_MODEL: model,
            semconv.GEN_AI_RESPONSE_MODEL: f"{model}-2024-08-06",
            semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: fingerprint,
            semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: ttfc,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: tokens,
            semconv.OUTPUT_CHARS: chars,
            semconv.OUTPUT_FORMAT_EXPECTED: semconv.FORMAT_JSON,
            semconv.OUTPUT_FORMAT_VALID: not invalid,
            semconv.OUTPUT_PREAMBLE: bool(changed and rng.random() < 0.7),
            semconv.OUTPUT_CODE_FENCE: bool(changed and rng.random() < 0.8),
            semconv.OUTPUT_REFUSAL: bool(rng.random() < 0.02),
            semconv.OUTPUT_TRUNCATED: bool(rng.random() < 0.01),
            semconv.RETRY_COUNT: int(rng.random() < 0.03),
        }
        if route:
            attrs[semconv.ROUTE] = route
        span = self.tracer.start_span(f"chat {model}", attributes=attrs, start_time=start)
        vector = None
        if text:
            body = " ".join(rng.choice(WORDS, 40))
            if changed:
                body = "Sure! Here is the JSON you asked for:\n```json\n" + body + "\n```"
            vector = content_vector(body)
        features.attach(span, CallFeatures(system_digest=digest, output_vector=vector))
        span.end(end_time=start + int(latency * 1e9))

    def drift_events(self, stream: str | None = None) -> list[tuple[int, dict]]:
        out = []
        for i, span in enumerate(self.exporter.get_finished_spans(), 1):
            for event in span.events:
                if event.name == semconv.DRIFT_EVENT and (
                    stream is None or event.attributes[semconv.DRIFT_STREAM] == stream
                ):
                    out.append((i, dict(event.attributes)))
        return out


def _meter():
    reader = InMemoryMetricReader()
    return reader, MeterProvider(metric_readers=[reader]).get_meter("test")


def _points(reader, name):
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    return {
                        tuple(sorted(p.attributes.items())): p.value
                        for p in metric.data.data_points
                    }
    return {}


def test_silent_provider_change_raises_one_event_per_drifting_feature():
    reader, meter = _meter()
    sim = Sim(DriftStage(seed=1, meter=meter))
    changed_route, steady_route = "openai/gpt-4o/support", "openai/gpt-4o-mini/support"
    pre, post = 700, 1300
    for i in range(pre + post):
        changed = i >= pre
        sim.call(route="support", fingerprint="fp_b" if changed else "fp_a", changed=changed)
        sim.call(model="gpt-4o-mini", route="support")
    events = sim.drift_events(changed_route)
    features_hit = [e[semconv.DRIFT_FEATURE] for _, e in events]
    assert len(features_hit) == len(set(features_hit)), features_hit  # one event per feature
    assert {
        "system_fingerprint",
        "format_invalid",
        "preamble",
        "code_fence",
        "output_chars",
        "output_tokens",
        "latency",
    } <= set(features_hit)
    for index, event in events:
        delay = (index + 1) // 2 - pre  # two spans per round
        if event[semconv.DRIFT_KIND] == semconv.DRIFT_KIND_PERFORMANCE:
            continue  # timing has its own budget; a later alarm of it may be noise
        # within a few dozen calls; the content sketch moves less (same words, wrapped) and may follow
        assert delay <= (200 if event[semconv.DRIFT_FEATURE] == "content" else 60), (event, delay)
        assert event[semconv.DRIFT_SUSPECTED_CAUSE] == semconv.DRIFT_CAUSE_PROVIDER_CHANGE
        assert event[semconv.DRIFT_VALUE] >= event[semconv.DRIFT_THRESHOLD]
    # alarms close together are one alert: the fingerprint at once, then the content change
    first = events[0][1]
    assert first[semconv.DRIFT_FEATURE] == "system_fingerprint"
    assert first[semconv.DRIFT_KIND] == semconv.DRIFT_KIND_PROVIDER and first[semconv.DRIFT_ALERT]
    assert events[0][0] // 2 - pre <= 3
    opened = [e for _, e in events if e[semconv.DRIFT_ALERT]]
    assert len(opened) <= len(events) // 2, [
        (e[semconv.DRIFT_FEATURE], e[semconv.DRIFT_KIND]) for e in opened
    ]
    grouped = [e for _, e in events if not e[semconv.DRIFT_ALERT]]
    assert all(e[semconv.DRIFT_FEATURE] in e[semconv.DRIFT_FEATURES] for e in grouped)
    assert sim.drift_events(steady_route) == []

    alerts = _points(reader, semconv.METRIC_DRIFT_ALERTS)
    assert sum(v for k, v in alerts.items() if ("stream", changed_route) in k) == len(opened)
    assert not any(("stream", steady_route) in k for k in alerts)
    scores = _points(reader, semconv.METRIC_DRIFT_SCORE)
    steady = {dict(k)["feature"]: v for k, v in scores.items() if ("stream", steady_route) in k}
    assert {"output_chars", "latency", "content", "format_invalid", "response_model"} <= set(steady)
    assert all(0.0 <= v < 1.0 for v in steady.values())


@pytest.mark.parametrize(
    ("digest_after", "cause"),
    [(8, semconv.DRIFT_CAUSE_PROMPT_CHANGE), (7, semconv.DRIFT_CAUSE_TRAFFIC_OR_UNKNOWN)],
)
def test_cause_without_provider_change(digest_after, cause):
    sim = Sim(
        DriftStage(seed=2, features=("output_chars", "response_model", "system_fingerprint")),
        seed=3,
    )
    for i in range(WARMUP + 200):
        changed = i >= WARMUP + 100
        sim.call(
            route="answers", digest=digest_after if changed else 7, changed=changed, text=False
        )
    events = sim.drift_events()
    assert [e[semconv.DRIFT_FEATURE] for _, e in events] == ["output_chars"]
    assert events[0][1][semconv.DRIFT_SUSPECTED_CAUSE] == cause


def test_inferred_route_and_stream_attribute():
    sim = Sim(DriftStage(seed=3, features=("output_chars",)))
    sim.call(digest=0xABCDEF12)
    sim.call(operation=semconv.OP_EMBEDDINGS)
    llm, other = sim.exporter.get_finished_spans()
    assert llm.attributes[semconv.DRIFT_STREAM] == "openai/gpt-4o/sys-abcdef12"
    assert semconv.DRIFT_STREAM not in other.attributes


def test_streams_are_bounded_by_count_and_idle_time():
    stage = DriftStage(max_streams=2, stream_ttl_s=60, features=("output_chars",))
    sim = Sim(stage)
    for route in ("a", "b", "c"):
        sim.call(route=route)
    assert list(stage.streams) == ["openai/gpt-4o/b", "openai/gpt-4o/c"]
    stage.tick(T0 + 3 * 10**9 + 30 * 10**9, lambda s: None)
    assert len(stage.streams) == 2
    stage.tick(T0 + 10 * 10**9 + 120 * 10**9, lambda s: None)
    assert not stage.streams


def test_bad_input_is_skipped_not_raised():
    sim = Sim(DriftStage(features=("output_chars", "latency")))
    span = sim.tracer.start_span(
        "chat",
        attributes={semconv.GEN_AI_OPERATION_NAME: "chat", semconv.OUTPUT_CHARS: float("nan")},
    )
    span.end()
    (out,) = sim.exporter.get_finished_spans()
    assert out.attributes[semconv.DRIFT_STREAM] == "unknown/unknown/default"


def test_unknown_features_and_arl_are_refused():
    with pytest.raises(ValueError):
        DriftStage(features=("lenght",))
    with pytest.raises(ValueError):
        DriftStage(arl=0.5)


def test_calls_without_text_cues_batch_their_misses_into_the_known_detectors_only():
    """Spans without captured content never know the preamble, code-fence or retry features:
    their misses are still batched, and only the detectors of known features learn from them."""
    from frictionlens.processors.drift.calibration import thresholds
    from frictionlens.processors.drift.stage import RATE_FEATURES, StreamState

    th = {
        semconv.DRIFT_KIND_CONTENT: thresholds(10_000.0, statistics=len(RATE_FEATURES)),
        semconv.DRIFT_KIND_PERFORMANCE: thresholds(10_000.0, statistics=0),
    }
    batched = StreamState(th, RATE_FEATURES, ())
    one_by_one = StreamState(th, RATE_FEATURES, ())
    rng = np.random.default_rng(3)
    for _ in range(3000):
        invalid = bool(rng.random() < 0.05)
        # format validity, refusal, truncation and error known; preamble, code fence, retry not
        rates = (invalid, None, None, False, False, False, None)
        batched.observe(rates, (), None, None, None, None, random.Random(0))
        for rate, x in zip(one_by_one.rates, rates):
            if x is not None:
                rate.update(x)
                if rate.drift_detected:
                    rate.alarm()
    batched._flush_misses()  # pylint: disable=protected-access
    for fed, ref, x in zip(batched.rates, one_by_one.rates, rates):
        assert fed.n == ref.n > 0 if x is not None else fed.n == ref.n == 0, fed.feature
        assert fed.count == pytest.approx(ref.count) and fed.statistic == pytest.approx(
            ref.statistic
        ), fed.feature


def test_a_young_stream_without_a_provider_change_blames_none():
    """Alarms come from the 32nd call on: the attribution window must not reach before the
    stream's first call, where "never changed" would look like a change."""
    sim = Sim(DriftStage(seed=4, features=("output_chars", "response_model")), seed=5)
    for i in range(120):
        sim.call(route="young", changed=i >= 60, text=False)
    events = sim.drift_events()
    assert [e[semconv.DRIFT_FEATURE] for _, e in events] == ["output_chars"]
    assert events[0][1][semconv.DRIFT_SUSPECTED_CAUSE] == semconv.DRIFT_CAUSE_TRAFFIC_OR_UNKNOWN
