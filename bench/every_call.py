"""Every call counted: the app of ``tests/every_call_app.py`` (60 two-turn conversations, 15
with an explicit correction: 120 calls, 12.5% of them with friction), run as a real process
with the real openai SDK against the local server, never flushing, exiting normally.

With every default: spans at a real OTLP receiver (gRPC), spans in the local store, and what
``frictionlens report`` says. Then with ``FRICTIONLENS_SAMPLE_RATE`` (``--rate``) over
``--seeds`` seeds (the seed fixes the trace ids): spans kept, the report's calls and friction
rate from the whole store (metrics beside the spans), from the spans alone (the traces file:
conversation summaries beside the calls), and what any backend computes from ``th`` alone
(each call span counted 1/probability times), with their spread over the seeds.

    python3 bench/every_call.py                  # 20 seeds at 10%, about 2 minutes
    python3 bench/every_call.py --seeds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from frictionlens.exporters import report  # noqa: E402
from frictionlens.exporters.filestore import TRACES_FILE  # noqa: E402
from frictionlens.exporters.sampling import adjusted_count  # noqa: E402
from frictionlens.localserver import LocalLLMServer  # noqa: E402
from tests.otlp import CapturedOTLP  # noqa: E402
from tests.test_every_call import (  # noqa: E402
    CALLS,
    CONVERSATIONS,
    FRICTION_RATE,
    calls_of,
    run_app,
    store_spans,
)


def _backend_view(spans: list[dict]) -> tuple[float, float]:
    """(calls, friction rate) counting each call span 1/probability times, nothing else."""
    calls = calls_of(spans)
    weights = [adjusted_count(s["trace_state"]) for s in calls]
    friction = sum(
        w for s, w in zip(calls, weights) if s["attributes"].get("frictionlens.friction.kind")
    )
    return sum(weights), friction / sum(weights)


def _spread(values: list[float], fmt: str) -> str:
    return (
        f"{fmt.format(statistics.median(values))} "
        f"[{fmt.format(min(values))} … {fmt.format(max(values))}]"
        + (f", sd {fmt.format(statistics.stdev(values))}" if len(values) > 1 else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.1)
    args = parser.parse_args()
    with LocalLLMServer() as llm, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(
            f"truth: {CALLS} calls, {CONVERSATIONS} conversations, friction {FRICTION_RATE:.1%}\n"
        )
        with CapturedOTLP() as receiver:
            run_app(llm, root / "otlp", receiver.env("grpc"))
            received = receiver.spans()
        store = root / "default" / "store"
        run_app(llm, root / "default", {})
        rep = report.load(store)
        print("| every default | call spans | summaries | report: calls | report: friction |")
        print("|---|---|---|---|---|")
        for name, spans in (("OTLP receiver", received), ("local store", store_spans(store))):
            summaries = sum(s["name"] == "frictionlens.conversation" for s in spans)
            print(
                f"| {name} | {len(calls_of(spans))} | {summaries} | "
                + (
                    f"{rep.calls} | {rep.friction_rate:.1%} |"
                    if name == "local store"
                    else "- | - |"
                )
            )
        kept, full, alone, backend = [], [], [], []
        for seed in range(1, args.seeds + 1):
            where = root / f"s{seed}"
            run_app(llm, where, {"FRICTIONLENS_SAMPLE_RATE": str(args.rate)}, "--seed", str(seed))
            spans = store_spans(where / "store")
            kept.append(len(calls_of(spans)))
            for out, source in ((full, where / "store"), (alone, where / "store" / TRACES_FILE)):
                r = report.load(source, metrics=False)
                out.append((r.calls, r.friction_rate))
            backend.append(_backend_view(spans))
        print(
            f"\nsampled at {args.rate:g}, {args.seeds} seeds: median [min … max], sd\n\n"
            f"| estimate from | calls | friction rate |\n|---|---|---|"
        )
        print(f"| call spans kept | {_spread([float(k) for k in kept], '{:.0f}')} | - |")
        for name, rows in (
            ("report, whole store", full),
            ("report, spans alone", alone),
            ("1/probability per call span", backend),
        ):
            calls = [float(c) for c, _ in rows]
            rates = [100 * f for _, f in rows]
            print(f"| {name} | {_spread(calls, '{:.1f}')} | {_spread(rates, '{:.1f}')}% |")


if __name__ == "__main__":
    main()
