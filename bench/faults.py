"""Fault injection on the export path: what a broken OTLP backend costs the app.

An instrumented app sends steady traffic (``--rate`` calls a second, the real openai SDK
against the local server) while its OTLP/HTTP backend is healthy, then down, slow
(``--slow-s``), answering 500, answering 429 and resetting connections, ``--seconds`` each
(default 60), healthy again between faults. Every call is paired with the same call through
the unwrapped SDK method in the same phase, so "added" is instrumented minus bare.

Per phase: latency p50/p99 (bare, instrumented, added), the longest time the export stage
held a span's end (a blocked exporter would show here), peak RSS, spans dropped (queue full,
export failed; from ``frictionlens.export.dropped``) and seconds until spans made after the
fault reached the receiver. At the end: received spans == queued - dropped, and the dropped
counter the receiver got equals the in-process count.

    python3 bench/faults.py                 # 6 phases x 60 s, about 7 minutes
    python3 bench/faults.py --seconds 10    # a quicker look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai  # noqa: E402
from openai.resources.chat.completions.completions import Completions  # noqa: E402

import frictionlens  # noqa: E402
from frictionlens import runtime  # noqa: E402
from frictionlens import semconv as sc  # noqa: E402
from frictionlens.exporters.delivery import QUEUED  # noqa: E402
from frictionlens.localserver import LocalLLMServer  # noqa: E402
from tests.faults import FAULTS, FaultyBackend  # noqa: E402
from tests.otlp import CapturedOTLP  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    ap.add_argument("--rate", type=float, default=20.0, help="calls a second (each also made bare)")
    ap.add_argument("--slow-s", type=float, default=5.0, help="delay of the slow backend")
    ap.add_argument("--queue", type=int, default=2048, help="OTEL_BSP_MAX_QUEUE_SIZE")
    ap.add_argument(
        "--faults", default=",".join(FAULTS), help=f"comma-separated, of {','.join(FAULTS)}"
    )
    args = ap.parse_args()

    with (
        LocalLLMServer() as llm,
        CapturedOTLP(grpc_endpoint=None) as receiver,
        FaultyBackend(receiver.http_url, slow_s=args.slow_s) as backend,
        tempfile.TemporaryDirectory() as data,
    ):
        os.environ.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": backend.url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BSP_MAX_QUEUE_SIZE": str(args.queue),
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            }
        )
        frictionlens.instrument(
            exporter="otlp", sample_rate=1.0, providers=["openai"], data_dir=data
        )
        export = runtime.installed().pipeline.downstream
        held = [0.0]
        on_end = export.on_end

        def timed_on_end(span):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            on_end(span)
            held[0] = max(held[0], time.perf_counter() - start)

        export.on_end = timed_on_end
        client = openai.OpenAI(base_url=llm.openai_base_url, api_key="k", max_retries=0)
        n = 0

        def pair() -> tuple[float, float, str]:
            nonlocal n
            n += 1
            kw = {"model": "m", "messages": [{"role": "user", "content": f"question {n}"}]}
            t0 = time.perf_counter()
            Completions.create.__wrapped__(client.chat.completions, **kw)
            t1 = time.perf_counter()
            rid = client.chat.completions.create(**kw).id
            return t1 - t0, time.perf_counter() - t1, rid

        print(
            f"{args.seconds:g} s per phase, {args.rate:g} calls/s, queue {args.queue}, slow backend {args.slow_s:g} s"
        )
        print(
            "| phase | calls | bare p50/p99 ms | instrumented p50/p99 ms | added p50/p99 ms | export stage max ms "
            "| peak RSS MB | dropped: queue full / export failed | resumed after s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for phase in ["ok", *args.faults.split(",")]:
            backend.set_mode(phase)
            before, held[0], bare, inst, peak = export.stats(), 0.0, [], [], rss_mb()
            end = time.monotonic() + args.seconds
            while (now := time.monotonic()) < end:
                b, i, _ = pair()
                bare.append(b)
                inst.append(i)
                peak = max(peak, rss_mb())
                time.sleep(max(0.0, 1 / args.rate - (time.monotonic() - now)))
            backend.set_mode("ok")
            t0 = time.monotonic()
            probe = pair()[2]
            while probe not in {
                s["attributes"].get(sc.GEN_AI_RESPONSE_ID) for s in receiver.spans()[-200:]
            }:
                time.sleep(0.05)
                if time.monotonic() - t0 > 120:
                    break
            resumed = time.monotonic() - t0
            after = export.stats()
            lost = [
                after.get(k, 0) - before.get(k, 0)
                for k in (sc.EXPORT_DROPPED_QUEUE_FULL, sc.EXPORT_DROPPED_FAILED)
            ]
            ms = [1e3 * pct(v, q) for v in (bare, inst) for q in (0.5, 0.99)]
            print(
                f"| {phase} | {len(inst)} | {ms[0]:.1f} / {ms[1]:.1f} | {ms[2]:.1f} / {ms[3]:.1f} "
                f"| {ms[2] - ms[0]:.2f} / {ms[3] - ms[1]:.2f} | {held[0] * 1e3:.2f} | {peak:.0f} "
                f"| {lost[0]} / {lost[1]} | {f'{resumed:.1f}' if resumed <= 120 else 'no'} |",
                flush=True,
            )
        frictionlens.uninstrument()
        stats = export.stats()
        dropped = stats.get(sc.EXPORT_DROPPED_QUEUE_FULL, 0) + stats.get(
            sc.EXPORT_DROPPED_FAILED, 0
        )
        received = len({s["span_id"] for s in receiver.spans()})
        points = receiver.wait_for_metric(sc.METRIC_EXPORT_DROPPED) if dropped else []
        reported = {p["attributes"][sc.METRIC_ATTR_REASON]: p["value"] for p in points}
        print(
            f"\nspans queued {stats[QUEUED]}, dropped {dropped} ({stats}), received {received}: "
            f"{'all accounted for' if received == stats[QUEUED] - dropped else 'MISMATCH'}"
        )
        print(
            f"frictionlens.export.dropped at the receiver: {reported} "
            f"({'equal' if reported == {k: v for k, v in stats.items() if k != QUEUED and v} else 'DIFFERENT'})"
        )


if __name__ == "__main__":
    main()
