"""Cost of the normalizer per span: the early exit our own spans take, and peer spans read.

Builds finished spans once with the OpenTelemetry SDK, shaped like what each instrumentation
emits for the same chat call (attribute names as recorded from the real peers), then times
``Normalizer.process`` on each, then one attribute set and the enriched copy built (what the
later stages cost every span anyway), against the same without the normalizer, timed the same
way in the same run, rounds interleaved. The reference row
is the SDK's own cost of creating and ending a span with 12 attributes, measured in the same run.

    python bench/normalize.py            # ~20 s
    python bench/normalize.py --quick    # a few seconds, smoke test
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402

from frictionlens import semconv as sc  # noqa: E402
from frictionlens import semconv_peers as peers  # noqa: E402
from frictionlens.features.record import CallFeatures  # noqa: E402
from frictionlens.processors.normalize import Normalizer  # noqa: E402
from frictionlens.processors.pipeline import SpanRecord  # noqa: E402


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _parts(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def shapes(n: int) -> dict[str, tuple[dict[str, Any], bool]]:
    """row -> (span attributes, in-process features attached?) for call ``n``."""
    msgs = _common.messages(n)
    answer = f"{_common.ANSWER} ({n})"
    genai = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: _common.MODEL,
        sc.GEN_AI_RESPONSE_MODEL: _common.MODEL,
        sc.GEN_AI_RESPONSE_ID: f"chatcmpl-{n}",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        sc.GEN_AI_USAGE_INPUT_TOKENS: 96,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 88,
    }
    content = {
        sc.GEN_AI_INPUT_MESSAGES: json.dumps([_parts(m["role"], m["content"]) for m in msgs]),
        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
            [{**_parts("assistant", answer), "finish_reason": "stop"}]
        ),
    }
    oi: dict[str, Any] = {
        peers.OPENINFERENCE_SPAN_KIND: "LLM",
        peers.OPENINFERENCE_LLM_SYSTEM: "openai",
        peers.OPENINFERENCE_MODEL_NAME: _common.MODEL,
        peers.OPENINFERENCE_INVOCATION_PARAMETERS: json.dumps({"model": _common.MODEL}),
        peers.OPENINFERENCE_TOKENS_PROMPT: 96,
        peers.OPENINFERENCE_TOKENS_COMPLETION: 88,
        peers.OPENINFERENCE_FINISH_REASON: "stop",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": answer,
    }
    for i, m in enumerate(msgs):
        oi[f"llm.input_messages.{i}.message.role"] = m["role"]
        oi[f"llm.input_messages.{i}.message.content"] = m["content"]
    return {
        "frictionlens' own LLM span (early exit)": ({**genai, sc.OUTPUT_CHARS: len(answer)}, True),
        "other span, e.g. HTTP (early exit)": (
            {"http.request.method": "POST", "url.full": "https://x/v1"},
            False,
        ),
        "official / GenAI conventions, no content": (genai, False),
        "official / GenAI conventions, content": ({**genai, **content}, False),
        "OpenInference, content": (oi, False),
    }


def build(count: int) -> dict[str, list[tuple[ReadableSpan, CallFeatures | None]]]:
    keep = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(keep)
    tracer = provider.get_tracer("bench")
    out: dict[str, list[tuple[ReadableSpan, CallFeatures | None]]] = {}
    for n in range(count):
        for row, (attrs, ours) in shapes(n).items():
            tracer.start_span("chat", attributes=attrs).end()
            out.setdefault(row, []).append((keep.spans[-1], CallFeatures() if ours else None))
    return out


class _Enrich:
    """What the later stages do to every LLM span anyway (the drift stage names its stream):
    one attribute added, so the enriched copy is built in both variants."""

    def __init__(self, normalizer: Normalizer | None = None) -> None:
        self.normalizer = normalizer

    def process(self, record: SpanRecord, emit: Any) -> None:
        if self.normalizer is not None:
            self.normalizer.process(record, emit)
        record.set(sc.DRIFT_STREAM, "bench")


def _time(stage: Any, items: list[tuple[ReadableSpan, CallFeatures | None]]) -> float:
    clock = time.perf_counter_ns
    per: list[int] = []
    for span, feats in items:
        t0 = clock()
        record = SpanRecord(span, feats)
        stage.process(record, None)
        record.to_span()
        per.append(clock() - t0)
    return _common.median(per)


def _span_cost(count: int) -> float:
    tracer = TracerProvider().get_tracer("bench")
    attrs = {f"a{i}": i for i in range(12)}
    clock = time.perf_counter_ns
    per = []
    for _ in range(count):
        t0 = clock()
        tracer.start_span("chat", attributes=attrs).end()
        per.append(clock() - t0)
    return _common.median(per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, rounds = (200, 3) if args.quick else (1000, 15)
    rows = build(count)
    results: dict[str, dict[str, list[float]]] = {
        row: {"baseline": [], "normalizer": []} for row in rows
    }
    span_ref: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            # a fresh stage per round: its text cache must not turn content rows into cache hits
            order = [("baseline", _Enrich()), ("normalizer", _Enrich(Normalizer(b"bench-salt")))]
            for variant, stage in order if r % 2 == 0 else order[::-1]:
                for row, items in rows.items():
                    results[row][variant].append(_time(stage, items))
            span_ref.append(_span_cost(count))
    finally:
        gc.enable()
    ref = _common.median(span_ref) / 1000
    print(
        f"normalizer cost per span, {rounds} rounds x {count} spans; median of per-round medians, µs"
    )
    print()
    print("| span | baseline µs | with normalizer µs | added µs | added / SDK span |")
    print("|---|---:|---:|---:|---:|")
    for row, res in results.items():
        base, norm = (
            _common.median(res["baseline"]) / 1000,
            _common.median(res["normalizer"]) / 1000,
        )
        print(
            f"| {row} | {base:.2f} | {norm:.2f} | {norm - base:.2f} | {(norm - base) / ref:.2f}× |"
        )
    print(f"| reference: create and end an SDK span, 12 attributes | | | {ref:.2f} | 1.00× |")


if __name__ == "__main__":
    main()
