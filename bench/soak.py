"""State bounds under a long soak: 1,000,000 calls through the SignalPipeline, RSS over time.

Synthetic finished spans with their in-process features (salted digests, sketches; no HTTP,
no SDK) go through the stages ``instrument()`` builds, with their default caps: 200,000
conversations (``--active`` open at once, 4-5 turns each, the history resent every turn),
5,000 streams (provider + model), 50,000 agent tasks (two LLM calls and a tool run each,
1,000 task names). Span times advance 50 ms a call (``--step-ms``), so idle timeouts fire as
they would in production. Prints RSS every ``--calls``/10 calls, the state each stage holds,
and the evictions counted in ``frictionlens.state.evictions``.

    python3 bench/soak.py                    # full size; about an hour on a busy 2-core machine
    python3 bench/soak.py --calls 200000     # everything scaled by 1/5; about 12 minutes
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider  # noqa: E402

from frictionlens import health, runtime  # noqa: E402
from frictionlens import semconv as sc  # noqa: E402
from frictionlens.config import Options  # noqa: E402
from frictionlens.features import record as features  # noqa: E402
from frictionlens.features.record import CallFeatures, MessageFeatures, TextFeatures  # noqa: E402
from frictionlens.features.text import SKETCH_BINS  # noqa: E402
from frictionlens.processors.pipeline import SignalPipeline  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


class Load:
    """Makes the spans; every random choice comes from one seeded generator."""

    def __init__(self, pipeline: SignalPipeline, args: argparse.Namespace) -> None:
        provider = TracerProvider()
        provider.add_span_processor(pipeline)
        self.tracer = provider.get_tracer("soak")
        self.rng = np.random.default_rng(0)
        self.args = args
        self.now = time.time_ns()
        self.calls = 0

    def text(self, chars: int) -> TextFeatures:
        digest, *sketch = (
            self.rng.integers(0, 1 << 63, dtype=np.int64),
            *self.rng.integers(0, 255, SKETCH_BINS),
        )
        return TextFeatures(int(digest), chars, tuple(int(b) for b in sketch))

    def call(
        self,
        stream: int,
        messages: tuple[MessageFeatures, ...],
        output: TextFeatures | None,
        tools: tuple[tuple[str, int], ...] = (),
        conversation: str | None = None,
    ) -> None:
        self.calls += 1
        self.now += self.args.step_ms * 1_000_000
        attrs = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: f"model-{stream}",
            sc.GEN_AI_RESPONSE_MODEL: f"model-{stream}",
            sc.OUTPUT_CHARS: output.chars if output else 0,
            sc.OUTPUT_FORMAT_EXPECTED: sc.FORMAT_TEXT,
            sc.OUTPUT_FORMAT_VALID: True,
            sc.OUTPUT_PREAMBLE: False,
            sc.OUTPUT_REFUSAL: False,
            sc.OUTPUT_TRUNCATED: False,
            sc.RETRY_COUNT: 0,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 60,
        }
        if conversation:
            attrs[sc.GEN_AI_CONVERSATION_ID] = conversation
        span = self.tracer.start_span(
            f"chat model-{stream}", attributes=attrs, start_time=self.now - 40_000_000
        )
        features.attach(
            span,
            CallFeatures(
                messages=messages,
                outputs=(output,) if output else (),
                system_digest=stream,
                tool_calls=tools,
                tool_call_ids=tuple(f"c{self.calls}" for _ in tools),
            ),
        )
        span.end(end_time=self.now)

    def conversation_turn(self, state: dict) -> bool:
        """One turn of a conversation; False once it has had all its turns."""
        user = self.text(int(self.rng.integers(20, 400)))
        state["history"] += (MessageFeatures("user", user),)
        answer = self.text(int(self.rng.integers(100, 2000)))
        given = state["id"] if state["given"] else None
        self.call(state["stream"], state["history"], answer, conversation=given)
        state["history"] += (MessageFeatures("assistant", answer),)
        state["turns"] -= 1
        return state["turns"] > 0

    def task(self, n: int) -> None:
        """An agent task: a tool-calling LLM call, the tool run, the final call."""
        root = self.tracer.start_span(
            f"invoke_agent agent-{n % 1000}",
            start_time=self.now,
            attributes={
                sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
                sc.GEN_AI_AGENT_NAME: f"agent-{n % 1000}",
            },
        )
        with trace.use_span(root, end_on_exit=False):
            ask = (MessageFeatures("user", self.text(80)),)
            self.call(
                n % self.args.streams,
                ask,
                None,
                tools=(("lookup", int(self.rng.integers(1 << 62))),),
            )
            tool = self.tracer.start_span(
                "execute_tool lookup",
                start_time=self.now,
                attributes={
                    sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                    sc.GEN_AI_TOOL_NAME: "lookup",
                    sc.GEN_AI_TOOL_CALL_ID: f"c{self.calls}",
                },
            )
            tool.end(end_time=self.now + 1_000_000)
            self.call(
                n % self.args.streams,
                ask + (MessageFeatures("tool", self.text(200)),),
                self.text(300),
            )
        root.set_attribute(sc.TRAJECTORY_OUTCOME, sc.TRAJECTORY_OUTCOME_SUCCESS)
        root.end(end_time=self.now + 2_000_000)


def signal_stages(pipeline: SignalPipeline) -> tuple[Any, Any, Any]:
    """Friction, trajectory and drift: the stages after the normalizer, which holds no state."""
    friction, trajectory, drift = pipeline.stages[-3:]
    return friction, trajectory, drift


def held(pipeline: SignalPipeline) -> str:
    """Entries each stage holds right now."""
    friction, trajectory, drift = signal_stages(pipeline)
    return (
        f"{len(friction.tracker._convs)} conv, {len(trajectory._traces)} traces, "
        f"{len(trajectory.history._names)} names, {len(drift.streams)} streams"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--active", type=int, default=2_000, help="conversations open at once")
    ap.add_argument("--step-ms", type=int, default=50, help="simulated time between calls")
    args = ap.parse_args()
    scale = args.calls / 1_000_000
    args.conversations, args.streams, args.tasks = (
        int(200_000 * scale),
        max(1, int(5_000 * scale)),
        int(50_000 * scale),
    )
    if args.streams < 5_000:
        args.streams = min(5_000, max(args.streams, 300))  # always more streams than the drift cap

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("soak")
    health.bind_meter(meter)
    stages = runtime.build_stages(Options.resolve({}, environ={}), meter, b"soak-salt")
    pipeline = SignalPipeline(stages, downstream=SpanProcessor())
    load = Load(pipeline, args)
    gc.collect()
    base = rss_mb()
    print(
        f"{args.calls:,} calls, {args.conversations:,} conversations ({args.active:,} open at once), "
        f"{args.streams:,} streams, {args.tasks:,} agent tasks; RSS before: {base:.0f} MB"
    )
    print(
        "| calls | conversations started | tasks | elapsed s | RSS MB | held | evictions (state/reason: n) |"
    )
    print("|---:|---:|---:|---:|---:|---|---|")
    started, tasks_done, peak = 0, 0, base
    active: list[dict] = []
    task_every = max(1, args.calls // max(1, args.tasks))
    report_every = max(1, args.calls // 10)
    next_report = report_every
    t0 = time.perf_counter()
    while load.calls < args.calls:
        if tasks_done < args.tasks and load.calls // task_every > tasks_done:
            load.task(tasks_done)
            tasks_done += 1
        else:
            while len(active) < args.active and started < args.conversations:
                active.append(
                    {
                        "id": f"c{started}",
                        "given": started % 2 == 0,
                        "turns": 4 + started % 2,
                        "stream": started % args.streams,
                        "history": (MessageFeatures("system", load.text(300)),),
                    }
                )
                started += 1
            if not active:  # every conversation done: the rest of the calls start new ones
                args.conversations += args.active
                continue
            i = int(load.rng.integers(len(active)))
            if not load.conversation_turn(active[i]):
                active[i] = active[-1]
                active.pop()
        if load.calls >= next_report:
            next_report += report_every
            reader.get_metrics_data()  # a periodic export's collection
            gc.collect()
            peak = max(peak, rss_mb())
            ev = ", ".join(f"{s}/{r}: {n:,}" for (s, r), n in sorted(health.evictions().items()))
            print(
                f"| {load.calls:,} | {started:,} | {tasks_done:,} | {time.perf_counter() - t0:.0f} | {rss_mb():.0f} "
                f"| {held(pipeline)} | {ev} |",
                flush=True,
            )
    friction = signal_stages(pipeline)[0]
    convs = len(friction.tracker._convs)
    print(
        f"\npeak RSS {peak:.0f} MB (target <= 300 MB); growth over the start {peak - base:.0f} MB; "
        f"at most {(peak - base) * 2**20 / max(1, convs):,.0f} bytes per held conversation "
        f"({convs:,} held, every other table included)"
    )
    pipeline.shutdown()


if __name__ == "__main__":
    main()
