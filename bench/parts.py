"""Where one instrumented call's CPU goes, part by part, in the app and on the pipeline worker.

The real ``openai`` SDK over the in-process mock transport of ``bench/overhead.py``, with
``frictionlens.instrument()`` on an SDK tracer provider that exports to nowhere. Each part is
a function of frictionlens or of the OpenTelemetry SDK, timed in thread CPU time, exclusive of
the parts it calls (a stage's metric records count as metric records, not as the stage), in
two settings:

* batched: calls back to back, one ``force_flush`` per 20 calls;
* one at a time: one call, ``tracer_provider.force_flush()``, then idle (the common case:
  LLM calls are seconds apart).

In both, the metric reader collects once per 20 calls, as a periodic reader would (every 60 s,
with calls seconds apart).

    python bench/parts.py            # about a minute
    python bench/parts.py --quick

``worker, rest`` is the worker thread's CPU not in any part (its loop, queue, wake-ups);
``call, rest`` the calling thread's instrumentation not in any part (wrappers, proxies).
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

#: (module, attribute path, part): functions timed wherever they exist in this version
TIMED: list[tuple[str, str, str]] = [
    ("frictionlens.instrumentation.calls", "begin", "call: read request, start span"),
    ("frictionlens.instrumentation.calls", "complete", "call: read response"),
    ("frictionlens.instrumentation.streams", "_StreamState.chunk", "call: read stream chunks"),
    ("frictionlens.instrumentation.telemetry", "Telemetry.finish", "call: end stamp, hand-off"),
    ("frictionlens.instrumentation.telemetry", "Telemetry._end", "worker: outcome onto the span"),
    (
        "frictionlens.instrumentation.telemetry",
        "Telemetry._outcome",
        "features: output (format, cues)",
    ),
    (
        "frictionlens.instrumentation.telemetry",
        "Telemetry._record_metrics",
        "metric records: call metrics",
    ),
    ("frictionlens.features.answer", "non_answer", "features: non-answer"),
    ("frictionlens.features.record", "resolve", "features: for the stages (hashes, sketches)"),
    ("opentelemetry.sdk.trace", "Span.end", "span end (SDK)"),
    ("frictionlens.processors.pipeline", "SignalPipeline.on_end", "pipeline: queue and records"),
    ("frictionlens.processors.pipeline", "SignalPipeline._process", "pipeline: queue and records"),
    ("frictionlens.processors.pipeline", "SpanRecord.to_span", "span copy"),
    ("opentelemetry.sdk.metrics._internal.instrument", "Histogram.record", "metric records: SDK"),
    ("opentelemetry.sdk.metrics._internal.instrument", "Counter.add", "metric records: SDK"),
    ("opentelemetry.sdk.metrics._internal.instrument", "_Gauge.set", "metric records: SDK"),
    ("opentelemetry.sdk.metrics._internal.instrument", "UpDownCounter.add", "metric records: SDK"),
]


class Parts:
    """Exclusive thread-CPU time per part, per thread."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = defaultdict(int)
        self._local = threading.local()
        self._lock = threading.Lock()

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.thread_time_ns

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._local.__dict__.setdefault("stack", [])
            stack.append(0)
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = clock() - t0
                inner = stack.pop()
                if stack:
                    stack[-1] += elapsed
                with self._lock:
                    self.spent[part] += elapsed - inner

        return timed

    def patch(self, module: str, path: str, part: str) -> None:
        try:
            owner: Any = importlib.import_module(module)
        except ImportError:
            return
        *outer, name = path.split(".")
        for attr in outer:
            owner = getattr(owner, attr, None)
            if owner is None:
                return
        fn = getattr(owner, name, None)
        if fn is not None:
            setattr(owner, name, self.wrap(part, fn))

    def take(self) -> dict[str, int]:
        with self._lock:
            out, self.spent = dict(self.spent), defaultdict(int)
        return out


def _thread_cpu(name_prefix: str) -> int:
    """CPU ns used so far by the live threads whose name starts with ``name_prefix``."""
    total = 0
    for th in threading.enumerate():
        if th.name.startswith(name_prefix) and th.ident is not None:
            try:
                total += time.clock_gettime_ns(time.pthread_getcpuclockid(th.ident))
            except (OSError, ProcessLookupError):
                pass
    return total


def measure(calls: int, rounds: int, idle_s: float) -> dict[tuple[str, str], dict[str, float]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from overhead import _DropExporter  # type: ignore[import-not-found]

    import frictionlens

    parts = Parts()
    for module, path, part in TIMED:
        parts.patch(module, path, part)
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(_DropExporter()))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    collect = parts.wrap("metric collection (once per 20 calls)", reader.get_metrics_data)
    frictionlens.instrument(exporter="none", tracer_provider=tp, meter_provider=mp, salt="bench")
    from frictionlens import runtime

    state = runtime.installed()
    assert state is not None
    pipeline = state.pipeline
    for stage in pipeline.stages:
        stage.process = parts.wrap(f"stage: {type(stage).__name__}", stage.process)  # type: ignore[method-assign]
    downstream = pipeline.downstream
    downstream.on_end = parts.wrap("export (SDK processors)", downstream.on_end)  # type: ignore[method-assign]

    clients = {
        "chat": _common.openai_client(stream=False),
        "stream": _common.openai_client(stream=True),
    }
    seq = [0]

    def call(mode: str) -> None:
        seq[0] += 1
        kw = {
            "model": _common.MODEL,
            "messages": _common.messages(seq[0]),
            "temperature": 0.2,
            "max_tokens": 512,
        }
        if mode == "stream":
            kw["stream"] = True
        result = clients[mode].chat.completions.create(**kw)
        if mode == "stream":
            for _ in result:
                pass

    results: dict[tuple[str, str], dict[str, float]] = {}
    own = time.thread_time_ns
    for setting in ("batched", "one at a time"):
        for mode in ("chat", "stream"):
            for _ in range(5):  # warm up
                call(mode)
            tp.force_flush()
            gc.collect()
            parts.take()
            totals: dict[str, int] = defaultdict(int)
            n = 0
            for _ in range(rounds):
                w0 = _thread_cpu("frictionlens")
                for j in range(calls):
                    c0 = own()
                    call(mode)
                    totals["call (calling thread, all)"] += own() - c0
                    if setting == "one at a time" or j == calls - 1:
                        f0 = own()
                        tp.force_flush()
                        totals["flush (calling thread)"] += own() - f0
                        if setting == "one at a time":
                            time.sleep(idle_s)
                    n += 1
                m0 = own()
                collect()  # as a periodic reader would, every 60 s with calls seconds apart
                totals["collection (calling thread)"] += own() - m0
                totals["worker (all)"] += _thread_cpu("frictionlens") - w0
            spent = parts.take()
            row = {k: v / n / 1000 for k, v in spent.items()}
            row.update({k: v / n / 1000 for k, v in totals.items()})
            results[(setting, mode)] = row
    frictionlens.uninstrument()
    return results


CALL_PARTS = (
    "call: read request, start span",
    "call: read response",
    "call: read stream chunks",
    "call: end stamp, hand-off",
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--idle-ms", type=float, default=20.0, help="idle after each lone call")
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 15)
    res = measure(20, rounds, args.idle_ms / 1000)
    names: list[str] = []
    for row in res.values():
        names += [k for k in row if k not in names]
    worker_parts = [
        k
        for k in names
        if not k.startswith("call")
        and k not in ("flush (calling thread)", "collection (calling thread)", "worker (all)")
    ]
    cols = list(res)
    print("| part | " + " | ".join(f"{s}, {m} µs" for s, m in cols) + " |")
    print("|---|" + "---:|" * len(cols))

    def line(label: str, values: list[float]) -> None:
        print(f"| {label} | " + " | ".join(f"{v:.0f}" for v in values) + " |")

    # the calling thread's parts are exclusive; what they do not cover is the wrappers' own
    for k in CALL_PARTS:
        line(k, [res[c].get(k, 0.0) for c in cols])
    line("flush (calling thread)", [res[c].get("flush (calling thread)", 0.0) for c in cols])
    line(
        "calling thread CPU in the call (SDK included)",
        [res[c].get("call (calling thread, all)", 0.0) for c in cols],
    )
    worker_sum = {c: sum(res[c].get(k, 0.0) for k in worker_parts) for c in cols}
    # parts also run on the flushing thread (it drains the queue) and in the collection
    flush = {
        c: res[c].get("flush (calling thread)", 0.0)
        + res[c].get("collection (calling thread)", 0.0)
        for c in cols
    }
    for k in sorted(worker_parts):
        line(k, [res[c].get(k, 0.0) for c in cols])
    line(
        "worker, rest (loop, queue, wake-ups)",
        [res[c].get("worker (all)", 0.0) + flush[c] - worker_sum[c] for c in cols],
    )
    line("worker thread CPU (all)", [res[c].get("worker (all)", 0.0) for c in cols])
    print(
        f"\n{rounds} rounds × 20 calls per setting and mode; one at a time: "
        f"{args.idle_ms:.0f} ms idle after each call's flush. µs per call, thread CPU."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
