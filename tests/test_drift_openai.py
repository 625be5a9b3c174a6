"""Drift from a short baseline through the real OpenAI SDK, over HTTP to the local server.

A JSON-extraction route whose provider silently changes after the route's 250th call (new
system fingerprint; about 35 % of answers gain a preamble and a code fence, 25 % come back
pretty-printed, answers grow 2–3× and vary more), beside a control route that never
changes; 400 calls each, alternating. The change has to be alarmed within 50 calls, the
provider change within 5, and the control route has to stay quiet.
"""

from __future__ import annotations

import json
import random

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frictionlens
from frictionlens import semconv
from frictionlens.localserver import LocalLLMServer
from frictionlens.localserver.reply import ReceivedRequest, Reply

CALLS, CHANGE_AT = 400, 250
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
CITIES = ["London", "Paris", "Zurich", "Boston", "Oslo", "Kyoto"]


class Provider:
    """Answers per route: the route's n-th call decides the answer; seeded, so runs repeat."""

    def __init__(self) -> None:
        self.calls = {"extract": 0, "control": 0}
        self.rng = {"extract": random.Random(1), "control": random.Random(2)}

    def __call__(self, request: ReceivedRequest) -> Reply:
        system = request.json["messages"][0]["content"]
        route = "extract" if "invoices" in system else "control"
        self.calls[route] += 1
        rng = self.rng[route]
        record = {
            "name": rng.choice(NAMES),
            "city": rng.choice(CITIES),
            "amount": rng.randint(1, 999),
        }
        changed = route == "extract" and self.calls[route] > CHANGE_AT
        if not changed:
            return Reply(content=json.dumps(record), system_fingerprint=f"fp_{route}")
        for i in range(rng.randint(2, 6)):  # longer, and more varied
            record[f"line_{i}"] = {"item": rng.choice(CITIES), "qty": rng.randint(1, 50)}
        text = json.dumps(record, indent=2) if rng.random() < 0.25 else json.dumps(record)
        if rng.random() < 0.35:
            text = f"Sure! Here is the extracted data:\n```json\n{text}\n```"
        return Reply(content=text, system_fingerprint="fp_new")


@pytest.fixture
def spans():
    return replay()


def replay():
    """Both routes through instrument() and the SDK; every finished span."""
    provider = Provider()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meters = MeterProvider()
    frictionlens.instrument(tracer_provider=tracer_provider, meter_provider=meters, exporter="none")
    try:
        with (
            LocalLLMServer(provider) as server,
            openai.OpenAI(
                base_url=server.openai_base_url, api_key="local", max_retries=0
            ) as client,
        ):
            for i in range(CALLS):
                for route, system in (
                    ("extract", "Extract the invoices' fields as JSON."),
                    ("control", "Extract the contact's fields as JSON."),
                ):
                    with frictionlens.session(f"{route}-{i}", route=route):
                        client.chat.completions.create(
                            model="gpt-4o-mini",
                            messages=[
                                {"role": "system", "content": system},
                                {"role": "user", "content": f"Document {i}"},
                            ],
                            response_format={"type": "json_object"},
                        )
    finally:
        frictionlens.uninstrument()
        meters.shutdown()
    return exporter.get_finished_spans()


def _events(spans, route: str) -> list[tuple[int, dict]]:
    """(the route's call number, event attributes) of every drift event on that route."""
    calls = [s for s in spans if (s.attributes or {}).get(semconv.ROUTE) == route]
    calls.sort(key=lambda s: s.start_time)
    assert len(calls) == CALLS
    return [
        (n, dict(e.attributes))
        for n, span in enumerate(calls, 1)
        for e in span.events
        if e.name == semconv.DRIFT_EVENT
    ]


def test_a_provider_change_after_250_calls_is_alarmed_and_the_control_route_stays_quiet(spans):
    changed = _events(spans, "extract")
    # timing on a shared host is not stationary: performance alarms are reported, not alerted
    content = [
        (n, e) for n, e in changed if e[semconv.DRIFT_KIND] != semconv.DRIFT_KIND_PERFORMANCE
    ]
    assert all(n > CHANGE_AT for n, _ in content), content  # nothing before the change
    provider = [n for n, e in content if e[semconv.DRIFT_FEATURE] == "system_fingerprint"]
    assert provider and provider[0] - CHANGE_AT <= 5
    first = [n for n, e in content if e[semconv.DRIFT_FEATURE] not in ("system_fingerprint",)]
    assert first and first[0] - CHANGE_AT <= 50
    features = {e[semconv.DRIFT_FEATURE] for _, e in content}
    assert {"system_fingerprint", "code_fence", "output_chars"} <= features, features
    alerts = [e for _, e in content if e[semconv.DRIFT_ALERT]]
    assert len(alerts) < len(content) / 2  # alarms close together share one alert
    assert set(alerts[0][semconv.DRIFT_FEATURES]) == {"system_fingerprint"}
    assert set(content[-1][1][semconv.DRIFT_FEATURES]) >= {"system_fingerprint", "output_chars"}
    assert all(
        e[semconv.DRIFT_SUSPECTED_CAUSE] == semconv.DRIFT_CAUSE_PROVIDER_CHANGE for _, e in content
    )
    control = _events(spans, "control")
    assert all(e[semconv.DRIFT_KIND] == semconv.DRIFT_KIND_PERFORMANCE for _, e in control), control
