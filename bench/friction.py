"""Cost of the friction stage per LLM call span, and memory per tracked conversation.

A chat app's calls (the whole history resent each turn, as chat apps do) are replayed as
SDK spans carrying the attributes and in-process features the OpenAI instrumentation
attaches, with messages of ~200 characters and of ~4 KB. Per call, in the same rounds:

* sdk span         -- the SDK creating and ending the span (no-op processor): the baseline
* pipeline         -- the same through a SignalPipeline without stages (feature hand-off)
* pipeline+friction-- the same with the FrictionStage
* friction stage   -- ``FrictionStage.process`` alone, on the finished span and its features

Medians in µs over every call of every round, and the ratio to ``sdk span``. Features are
computed before timing: their cost belongs to the instrumentation (bench of text features).
Memory: tracemalloc over conversations whose features are computed inside the measured
region, so whatever the stage keeps of them counts; bytes per conversation.

    python3 -m bench.friction            # from the repo root; ~1 minute
    python3 -m bench.friction --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind

from frictionlens import semconv
from frictionlens.features import record as features
from frictionlens.features.record import CallFeatures, MessageFeatures
from frictionlens.features.text import text_features
from frictionlens.processors.friction import FrictionStage
from frictionlens.processors.pipeline import SignalPipeline, SpanRecord

SALT = b"bench-salt"


def _text(rng: random.Random, chars: int) -> str:
    """Random words (3-9 letters): unrelated texts, as most turns of a chat are."""
    out: list[str] = []
    size = 0
    while size < chars:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:chars]


def conversations(
    n: int, turns: int, chars: int, seed: int
) -> list[list[tuple[dict, CallFeatures]]]:
    """``n`` chats of ``turns`` calls: (span attributes, features) per call, history resent."""
    rng = random.Random(seed)
    system = text_features(_text(rng, 300), SALT)
    out = []
    for c in range(n):
        history: list[MessageFeatures] = [MessageFeatures("system", system)]
        calls = []
        for t in range(turns):
            history.append(
                MessageFeatures("user", text_features(f"{c}/{t} " + _text(rng, chars), SALT))
            )
            answer = text_features(f"{c}/{t} " + _text(rng, chars), SALT)
            attrs = {
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: _common.MODEL,
                semconv.SERVER_ADDRESS: "api.openai.com",
                semconv.GEN_AI_RESPONSE_ID: f"chatcmpl-{c}-{t}",
                semconv.GEN_AI_RESPONSE_MODEL: _common.MODEL,
                semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 96,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 88,
                semconv.RETRY_COUNT: 0,
                semconv.OUTPUT_CHARS: answer.chars,
                semconv.OUTPUT_FORMAT_EXPECTED: "text",
                semconv.OUTPUT_FORMAT_VALID: True,
            }
            calls.append((attrs, CallFeatures(messages=tuple(history), outputs=(answer,))))
            history.append(MessageFeatures("assistant", answer))
        out.append(calls)
    return out


def _quiet_meter():
    return MeterProvider(metric_readers=[]).get_meter("bench")


def _provider(stages: list | None) -> TracerProvider:
    tp = TracerProvider()
    if stages is None:
        tp.add_span_processor(SpanProcessor())
    else:
        tp.add_span_processor(
            SignalPipeline(stages, downstream=SpanProcessor(), tick_interval_s=3600)
        )
    return tp


def _time_spans(tp: TracerProvider, chats, attach: bool) -> list[float]:
    tracer = tp.get_tracer("bench")
    out = []
    clock = time.perf_counter_ns
    for calls in chats:
        for attrs, feats in calls:
            t0 = clock()
            span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attrs)
            if attach:
                features.attach(span, feats)
            span.end()
            out.append((clock() - t0) / 1000)
    return out


def _time_stage(chats) -> list[float]:
    stage = FrictionStage(meter=_quiet_meter())
    tracer = _provider(None).get_tracer("bench")
    prepared = []
    for calls in chats:
        for attrs, feats in calls:
            span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attrs)
            span.end()
            prepared.append((span, feats))
    out = []
    clock = time.perf_counter_ns
    emit = lambda s: None  # noqa: E731
    for span, feats in prepared:
        record = SpanRecord(span, feats)
        t0 = clock()
        stage.process(record, emit)
        out.append((clock() - t0) / 1000)
    return out


def measure(chars: int, rounds: int, n: int, turns: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {
        "sdk span": [],
        "pipeline": [],
        "pipeline+friction": [],
        "friction stage": [],
    }
    variants: dict[str, Callable[[list], list[float]]] = {
        "sdk span": lambda chats: _time_spans(_provider(None), chats, False),
        "pipeline": lambda chats: _time_spans(_provider([]), chats, True),
        "pipeline+friction": lambda chats: _time_spans(
            _provider([FrictionStage(meter=_quiet_meter())]), chats, True
        ),
        "friction stage": _time_stage,
    }
    for r in range(rounds):
        chats = conversations(n, turns, chars, seed=r)
        order = list(variants)
        random.Random(r).shuffle(order)
        for name in order:
            gc.collect()
            samples[name] += variants[name](chats)
    return {name: statistics.median(values) for name, values in samples.items()}


def bytes_per_conversation(n: int, turns: int, chars: int) -> tuple[float, int]:
    """tracemalloc growth per tracked conversation (features computed inside the region)."""
    stage = FrictionStage(meter=_quiet_meter(), max_conversations=n + 1)
    tracer = _provider(None).get_tracer("bench")
    emit = lambda s: None  # noqa: E731
    conversations(1, 2, chars, seed=99)  # warm caches (cue index, multipliers)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        for attrs, feats in conversations(1, turns, chars, seed=1000 + i)[0]:
            span = tracer.start_span("chat", attributes=attrs)
            span.end()
            stage.process(SpanRecord(span, feats), emit)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(stage.tracker) == n
    return (after - before) / n, len(stage.tracker)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n, turns, mem_n = (2, 20, 6, 300) if args.quick else (7, 60, 8, 3000)
    print(
        f"friction stage, {rounds} rounds x {n} conversations x {turns} calls (history resent), python {sys.version.split()[0]}"
    )
    print()
    print(
        "| messages | sdk span µs | pipeline µs | pipeline+friction µs | friction stage µs | stage / sdk span |"
    )
    print("|---|---|---|---|---|---|")
    for chars, label in ((200, "200 chars"), (4096, "4 KB")):
        m = measure(chars, rounds, n, turns)
        print(
            f"| {label} | {m['sdk span']:.1f} | {m['pipeline']:.1f} | {m['pipeline+friction']:.1f} | "
            f"{m['friction stage']:.1f} | {m['friction stage'] / m['sdk span']:.2f} |"
        )
    print()
    print("| messages | conversations | turns each | bytes per tracked conversation |")
    print("|---|---|---|---|")
    for chars, label in ((200, "200 chars"), (4096, "4 KB")):
        per, count = bytes_per_conversation(mem_n, 4, chars)
        print(f"| {label} | {count} | 4 | {per:,.0f} |")


if __name__ == "__main__":
    main()
