"""Cost of the trajectory stage per span, and memory per open task.

Builds agent traces once with the OpenTelemetry SDK (an ``invoke_agent`` root; per turn an
LLM span asking for one tool, an HTTP child span under it, an ``execute_tool`` span; then
a final answer), then replays their finished spans through ``TrajectoryStage.process`` as
the SignalPipeline does (plus the enriched copy it builds when a stage added attributes),
timing every span. The baseline is a stage that does nothing, timed the same way in the
same run, so the difference is what the trajectory stage adds.

Memory: ``tracemalloc`` around feeding every span but the root of many distinct traces, so
each task is open with all its children folded in.

    python bench/trajectory.py            # ~10 s
    python bench/trajectory.py --quick    # a second, smoke test
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

from frictionlens import semconv  # noqa: E402
from frictionlens.features import record as features  # noqa: E402
from frictionlens.features.record import CallFeatures  # noqa: E402
from frictionlens.processors.pipeline import SpanRecord  # noqa: E402
from frictionlens.processors.trajectory import TrajectoryStage  # noqa: E402

Item = tuple[str, ReadableSpan, "CallFeatures | None"]


class _Capture(SpanProcessor):
    def __init__(self) -> None:
        self.items: list[Item] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.items.append((_kind(span), span, features.pop(span)))


def _kind(span: ReadableSpan) -> str:
    op = (span.attributes or {}).get(semconv.GEN_AI_OPERATION_NAME)
    return {
        semconv.OP_CHAT: "LLM call",
        semconv.OP_EXECUTE_TOOL: "execute_tool",
        semconv.OP_INVOKE_AGENT: "task root (ends the task)",
    }.get(str(op), "other span (HTTP)")


def build_traces(count: int, turns: int) -> list[list[Item]]:
    """``count`` agent traces of ``turns`` tool turns each, as finished spans in end order."""
    capture = _Capture()
    provider = TracerProvider()
    provider.add_span_processor(capture)
    tracer = provider.get_tracer("bench")
    traces = []
    for n in range(count):
        capture.items = []
        with tracer.start_as_current_span(
            "invoke_agent bench",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
                semconv.GEN_AI_AGENT_NAME: "bench",
                semconv.TRAJECTORY_EXPECTED_STEPS: turns + 1,
            },
        ):
            for t in range(turns + 1):
                with tracer.start_as_current_span(
                    "chat gpt-4o-mini",
                    kind=SpanKind.CLIENT,
                    attributes={
                        semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                        semconv.GEN_AI_PROVIDER_NAME: "openai",
                        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                        semconv.GEN_AI_USAGE_INPUT_TOKENS: 300 + 50 * t,
                        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 40,
                    },
                ) as llm:
                    with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT):
                        pass
                    if t < turns:
                        features.attach(
                            llm,
                            CallFeatures(
                                tool_calls=((f"tool{t % 3}", hash((n, t)) & 0xFFFFFFFFFFFFFFFF),),
                                tool_call_ids=(f"call_{n}_{t}",),
                            ),
                        )
                if t < turns:
                    with tracer.start_as_current_span(
                        f"execute_tool tool{t % 3}",
                        attributes={
                            semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                            semconv.GEN_AI_TOOL_NAME: f"tool{t % 3}",
                            semconv.GEN_AI_TOOL_CALL_ID: f"call_{n}_{t}",
                        },
                    ):
                        pass
        traces.append(capture.items)
    return traces


def _meter() -> Any:
    """An SDK meter whose reader is never collected: recording costs what it costs in an app."""
    return MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")


class _NoOp:
    def process(self, record: SpanRecord, emit: Any) -> None:
        pass


def _emit(span: ReadableSpan) -> None:
    pass


ALL = "all spans (median of every span)"
WHOLE = "mean per span, task end included"


def _replay(
    stage: Any, traces: list[list[Item]], per_kind: dict[str, list[int]], per_trace: list[float]
) -> None:
    clock = time.perf_counter_ns
    for items in traces:
        total = 0
        for kind, span, feats in items:
            t0 = clock()
            record = SpanRecord(span, feats)
            stage.process(record, _emit)
            record.to_span()
            dt = clock() - t0
            per_kind[kind].append(dt)
            per_kind[ALL].append(dt)
            total += dt
        per_trace.append(total / len(items))


def measure(traces: list[list[Item]], rounds: int) -> dict[str, dict[str, list[float]]]:
    """variant -> row -> one median (ns) per round; variants alternate order every round."""
    kinds = sorted({k for items in traces for k, _, _ in items}) + [ALL]
    out: dict[str, dict[str, list[float]]] = {
        v: {k: [] for k in [*kinds, WHOLE]} for v in ("baseline", "trajectory")
    }
    stage = TrajectoryStage(meter=_meter())
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            for variant in ("baseline", "trajectory") if r % 2 == 0 else ("trajectory", "baseline"):
                per_kind: dict[str, list[int]] = {k: [] for k in kinds}
                per_trace: list[float] = []
                _replay(stage if variant == "trajectory" else _NoOp(), traces, per_kind, per_trace)
                for k in kinds:
                    out[variant][k].append(_common.median(per_kind[k]))
                out[variant][WHOLE].append(_common.median(per_trace))
    finally:
        gc.enable()
    return out


def references(n: int = 20000) -> dict[str, float]:
    """What this machine charges for a dict lookup and for one SDK histogram record (ns)."""
    d = {"k": 1}
    hist = _meter().create_histogram("ref")
    attrs = {"task": "bench", "outcome": "success"}
    clock = time.perf_counter_ns
    t0 = clock()
    for _ in range(n):
        d.get("k")
    t1 = clock()
    for _ in range(n):
        hist.record(3, attrs)
    t2 = clock()
    return {"dict.get": (t1 - t0) / n, "SDK histogram record": (t2 - t1) / n}


def memory_per_open_task(count: int, turns: int) -> float:
    """Bytes the stage holds per task whose children ended but whose root has not."""
    traces = build_traces(count, turns)
    stage = TrajectoryStage(meter=_meter())
    records = [[SpanRecord(span, feats) for _, span, feats in items[:-1]] for items in traces]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for recs in records:
        for rec in recs:
            stage.process(rec, _emit)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert stage.open_traces == count
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few traces and rounds (smoke test)")
    parser.add_argument("--turns", type=int, default=5, help="tool turns per task (default 5)")
    args = parser.parse_args(argv)
    count, rounds = (50, 3) if args.quick else (400, 15)
    traces = build_traces(count, args.turns)
    spans = len(traces[0])
    res = measure(traces, rounds)

    def us(values: list[float]) -> str:
        return f"{_common.median(values) / 1000:.2f}"

    lines = [
        f"trajectory stage, per span: {count} agent traces of {spans} spans ({args.turns} tool turns + answer; "
        f"LLM, HTTP and execute_tool spans), {rounds} rounds; each cell is the median over rounds of a per-round "
        "median; the baseline is a stage that does nothing, in the same rounds",
        "",
        "| span | baseline no-op stage (µs) | trajectory stage (µs) | added (µs) | ratio |",
        "|---|---|---|---|---|",
    ]
    for kind in res["baseline"]:
        base, traj = res["baseline"][kind], res["trajectory"][kind]
        added = [t - b for t, b in zip(traj, base)]
        lines.append(
            f"| {kind} | {us(base)} | {us(traj)} | {us(added)} | "
            f"{_common.median(traj) / _common.median(base):.1f}x |"
        )
    ref = references()
    lines += [
        "",
        f"this machine: one dict.get = {ref['dict.get']:.0f} ns; one SDK histogram record = "
        f"{ref['SDK histogram record'] / 1000:.1f} µs (a task end records 4 histograms and 1 counter)",
        "",
        "| memory | bytes per open task |",
        "|---|---|",
    ]
    for turns in (1, args.turns, 20):
        lines.append(
            f"| task with {turns} tool turns, all children ended, root open | "
            f"{memory_per_open_task(200 if args.quick else 2000, turns):,.0f} |"
        )
    lines += ["", "target: <= 10 µs median per span (row: all spans, added)."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
