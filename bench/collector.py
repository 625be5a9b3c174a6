"""Throughput, added latency and memory of ``frictionlens collector`` under load.

The collector runs as a real subprocess (gRPC in, the full signal pipeline, OTLP/gRPC out)
forwarding to a sink ``OTLPReceiver`` in this process. Senders push raw OTLP protobuf
requests of GenAI call spans (15 attributes each, 2,000 conversations) over gRPC.

0. Worker CPU per span (in this process, no network in; thread CPU time, so other
   processes on a busy machine do not inflate it): decode, the full pipeline and export, with spans forwarded as the protobuf they came in (what the
   collector does with a gRPC forward) against re-encoding them with the SDK's encoder
   (its HTTP forward path), interleaved batch by batch in the same run.
1. Sustainable rate: senders push as fast as the collector accepts (refused requests are
   retried after a short pause, as OTLP exporters do); the rate at which spans reach the
   sink is what the collector sustains.
2. At 1x, 2x and 4x that rate, open loop: offered, refused (429 / RESOURCE_EXHAUSTED,
   counted; a real exporter would retry them), delivered per second, p50 / p99 latency
   from send to arrival at the sink, and the collector's peak RSS in that phase.

3. With ``--baseline-python``: the sustainable rate of this code and of another version's
   (an interpreter whose ``frictionlens`` is, e.g., an install of an older checkout), each in
   its own collector subprocess, measured alternately, phase by phase, in the same run.

    python bench/collector.py            # about 2 minutes
    python bench/collector.py --quick    # a smoke run, under a minute
    python bench/collector.py --baseline-python <old-venv>/bin/python --pairs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from frictionlens import semconv
from frictionlens.collector.receiver import OTLPReceiver

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BATCH = 256  # spans per request, a typical SDK batch
CONVERSATIONS = 2000


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _requests(count: int, first_id: int) -> list[tuple[int, bytes]]:
    """``count`` serialised requests of BATCH spans: (id of the first span, body)."""
    out = []
    now = time.time_ns()
    n = first_id
    for _ in range(count):
        spans = []
        first = n
        for _ in range(BATCH):
            attrs = {
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
                semconv.GEN_AI_RESPONSE_ID: f"chatcmpl-{n}",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 96,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 88,
                semconv.GEN_AI_CONVERSATION_ID: f"conv-{n % CONVERSATIONS}",
                semconv.OUTPUT_CHARS: 400 + n % 50,
                semconv.OUTPUT_FORMAT_EXPECTED: "text",
                semconv.OUTPUT_FORMAT_VALID: True,
                semconv.OUTPUT_REFUSAL: False,
                semconv.OUTPUT_TRUNCATED: False,
                semconv.STREAM_ABANDONED: n % 97 == 0,
                "server.address": "api.openai.com",
            }
            spans.append(
                Span(
                    trace_id=n.to_bytes(16, "big"),
                    span_id=n.to_bytes(8, "big"),
                    name="chat gpt-4o-mini",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=now - 900_000_000,
                    end_time_unix_nano=now,
                    attributes=[_kv(k, v) for k, v in attrs.items()],
                )
            )
            n += 1
        rs = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
        rs.resource.attributes.append(_kv("service.name", "bench-app"))
        out.append((first, ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()))
    return out


class _Sink:
    """Counts spans and, for the first span of each request, the arrival time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans = 0
        self.arrived: dict[int, int] = {}
        self.receiver = OTLPReceiver(self._receive, grpc_endpoint="127.0.0.1:0", http_endpoint=None)

    def _receive(self, signal: str, message: ExportTraceServiceRequest) -> None:
        if signal != "traces":
            return
        now = time.monotonic_ns()
        ids = [
            int.from_bytes(s.span_id, "big")
            for rs in message.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]
        with self.lock:
            self.spans += len(ids)
            for i in ids:
                if i % BATCH == 1:  # ids start at 1 and every request holds BATCH spans
                    self.arrived[i] = now


class _Collector:
    def __init__(self, sink: str, queue: int, cwd: str, python: str = sys.executable) -> None:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
        self.proc = subprocess.Popen(
            [
                python,
                "-m",
                "frictionlens.cli",
                "collector",
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "off",
                "--forward",
                f"http://{sink}",
                "--queue",
                str(queue),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        self.endpoint = dict(p.split("=", 1) for p in line.split()[2:])["grpc"]

    def cpu_s(self) -> float:
        """CPU seconds the collector has used, all its threads."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=120)
        return out.strip()


def _send(channel: grpc.Channel, body: bytes) -> bool:
    try:
        channel.unary_unary(EXPORT)(body, timeout=30)
        return True
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return False
        raise


def _phase(
    collector: _Collector,
    sink: _Sink,
    requests: list[tuple[int, bytes]],
    rate: float | None,
    senders: int = 2,
) -> dict[str, float]:
    """Send ``requests`` at ``rate`` spans/s (None: closed loop, retrying refusals)."""
    sent: dict[int, int] = {}
    refused = [0]
    lock = threading.Lock()
    with sink.lock:
        start_spans = sink.spans
    t0 = time.monotonic()
    cpu0 = collector.cpu_s()
    interval = None if rate is None else BATCH / rate

    def sender(k: int) -> None:
        with grpc.insecure_channel(collector.endpoint) as channel:
            for j in range(k, len(requests), senders):
                first, body = requests[j]
                if interval is not None:
                    delay = t0 + j * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                while True:
                    at = time.monotonic_ns()
                    if _send(channel, body):
                        with lock:
                            sent[first] = at
                        break
                    if interval is not None:
                        with lock:
                            refused[0] += 1
                        break
                    time.sleep(0.05)

    peak = [0]
    done = threading.Event()

    def sample_rss() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], collector.rss_kb())

    watcher = threading.Thread(target=sample_rss, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    send_s = time.monotonic() - t0
    expected = start_spans + len(sent) * BATCH
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sink.lock:
            if sink.spans >= expected:
                break
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    cpu = collector.cpu_s() - cpu0
    done.set()
    watcher.join()
    with sink.lock:
        delivered = sink.spans - start_spans
        latencies = [(sink.arrived[i] - at) / 1e6 for i, at in sent.items() if i in sink.arrived]
    latencies.sort()
    return {
        "offered": len(requests) * BATCH / send_s if rate else float("nan"),
        "refused": refused[0] * BATCH,
        "accepted": len(sent) * BATCH,
        "delivered": delivered,
        "delivered_per_s": delivered / elapsed,
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if latencies
        else float("nan"),
        "peak_rss_mb": peak[0] / 1024,
        "cpu_cores": cpu / elapsed,
    }


def _cpu_timed(
    process: Callable[..., None], name: str, spent: dict[str, float]
) -> Callable[..., None]:
    """``process`` adding the CPU it takes to ``spent[name]``."""
    spent[name] = 0.0

    def timed(*args: object) -> None:
        t0 = time.thread_time()
        process(*args)
        spent[name] += time.thread_time() - t0

    return timed


def _worker_cost(sink: _Sink, batches: int, scratch: str) -> dict[str, float]:
    """Median CPU µs per span of the worker's parts, interleaved request by request: parsing,
    decoding into SDK spans (a ceiling: the most a process could do with no stages and no
    export), the worker with no stages (decode, merge, forward), the full pipeline forwarding
    the protobuf as received (and, within it, each stage), and the full pipeline re-encoding
    with the SDK."""
    from frictionlens.collector.decode import readable_spans
    from frictionlens.collector.gateway import Gateway, collector_options
    from frictionlens.exporters import otlp

    os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
    gateways = {
        name: Gateway(
            grpc_endpoint=None,
            http_endpoint=None,
            forward=f"http://{sink.receiver.grpc_endpoint}",
            options=collector_options(data_dir=f"{scratch}/worker-{name}"),
        )
        for name in ("full", "sdk", "bare")
    }
    # a fresh (unpatched) gRPC exporter and no raw sender: spans re-encoded by the SDK
    sdk = gateways["sdk"]._forwarder  # pylint: disable=protected-access
    sdk._exporter, sdk._send_raw = otlp.span_exporter(f"http://{sink.receiver.grpc_endpoint}"), None  # pylint: disable=protected-access
    gateways["bare"].pipeline.stages = []
    times: dict[str, list[float]] = {name: [] for name in ("parse", "decode", *gateways)}
    stage_cpu: dict[str, float] = {}
    for stage in gateways["full"].pipeline.stages:
        stage.process = _cpu_timed(stage.process, type(stage).__name__, stage_cpu)  # type: ignore[method-assign]

    def timed(name: str, work: Callable[[], object]) -> None:
        t0 = (
            time.thread_time()
        )  # this thread's CPU: the sink's threads and other processes do not count
        work()
        times[name].append((time.thread_time() - t0) / BATCH * 1e6)

    requests = _requests(batches, 10**9)
    for _, body in requests:
        timed("parse", lambda: ExportTraceServiceRequest.FromString(body))
        request = ExportTraceServiceRequest.FromString(body)
        timed("decode", lambda: readable_spans(request))
        for name, gw in gateways.items():
            request = ExportTraceServiceRequest.FromString(body)
            timed(name, lambda: gw._handle([request]))  # pylint: disable=protected-access
        for stage, spent in stage_cpu.items():
            times.setdefault(stage, []).append(spent / BATCH * 1e6)
            stage_cpu[stage] = 0.0
    for gw in gateways.values():
        gw.stop()
    # the first batches fill the conversation table and the drift baseline: steady state after
    return {name: statistics.median(values[len(values) // 2 :]) for name, values in times.items()}


def _compare(args: argparse.Namespace) -> None:
    """Sustainable spans/s of this code and of ``--baseline-python``'s, alternately."""
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    sink = _Sink()
    sink.receiver.start()
    scratch = tempfile.mkdtemp(prefix="bench-collector-")
    versions = {"this": sys.executable, "baseline": args.baseline_python}
    collectors = {
        name: _Collector(sink.receiver.grpc_endpoint or "", args.queue, f"{scratch}", python=python)
        for name, python in versions.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in versions}
    rss: dict[str, float] = {name: 0.0 for name in versions}
    next_id = 1
    try:
        for name, collector in collectors.items():  # warm: conversations, drift baselines
            warm = _requests(40, next_id)
            next_id += len(warm) * BATCH
            _phase(collector, sink, warm, None)
        for k in range(args.pairs):
            order = list(collectors) if k % 2 == 0 else list(reversed(collectors))
            for name in order:
                probe = _requests(int(4000 * seconds / BATCH) + 1, next_id)
                next_id += len(probe) * BATCH
                result = _phase(collectors[name], sink, probe, None)
                rates[name].append(result["delivered_per_s"])
                rss[name] = max(rss[name], result["peak_rss_mb"])
                print(
                    f"pair {k + 1}/{args.pairs} {name}: {result['delivered_per_s']:,.0f} spans/s",
                    file=sys.stderr,
                )
    finally:
        for collector in collectors.values():
            collector.stop()
        sink.receiver.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {BATCH} spans/request, "
        f"queue {args.queue} spans, closed loop, {args.pairs} alternating phases of "
        f"{seconds:.0f} s per version\n"
    )
    print("| version | sustained spans/s (median) | each phase | peak RSS MB |")
    print("|---|---:|---|---:|")
    for name, python in versions.items():
        each = ", ".join(f"{r:,.0f}" for r in rates[name])
        print(
            f"| {name} (`{python}`) | {statistics.median(rates[name]):,.0f} | {each} "
            f"| {rss[name]:.0f} |"
        )
    ratios = [a / b for a, b in zip(rates["this"], rates["baseline"]) if b]
    print(
        f"\nthis / baseline: {statistics.median(rates['this']) / statistics.median(rates['baseline']):.2f}x "
        f"(per pair: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--seconds", type=float, default=None, help="seconds per load level (default 10, quick 3)"
    )
    parser.add_argument(
        "--queue", type=int, default=4096, help="collector queue in spans (default 4096)"
    )
    parser.add_argument(
        "--baseline-python",
        default=None,
        help="interpreter of another frictionlens version: its sustainable rate, alternately",
    )
    parser.add_argument(
        "--pairs", type=int, default=5, help="alternating closed-loop phases per version"
    )
    args = parser.parse_args()
    if args.baseline_python:
        _compare(args)
        return
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    sink = _Sink()
    sink.receiver.start()
    scratch = tempfile.mkdtemp(prefix="bench-collector-")
    cost = _worker_cost(sink, 24 if args.quick else 60, scratch)
    collector = _Collector(sink.receiver.grpc_endpoint or "", args.queue, scratch)
    next_id = 1
    try:
        warm = _requests(8, next_id)
        next_id += 8 * BATCH
        _phase(collector, sink, warm, None)
        probe = _requests(int(4000 * seconds / BATCH) + 1, next_id)
        next_id += len(probe) * BATCH
        closed = _phase(collector, sink, probe, None)
        sustained = closed["delivered_per_s"]
        rows = []
        for factor in (1, 2, 4):
            rate = sustained * factor
            reqs = _requests(max(2, int(rate * seconds / BATCH)), next_id)
            next_id += len(reqs) * BATCH
            rows.append((factor, rate, _phase(collector, sink, reqs, rate)))
    finally:
        summary = collector.stop()
        sink.receiver.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {BATCH} spans/request, "
        f"queue {args.queue} spans, {seconds:.0f} s per level; collector totals: {summary}"
    )
    print(
        "\nworker CPU per span at steady state (median µs; spans/s if the worker did only this):\n"
    )
    print("| part | µs/span | spans/s |")
    print("|---|---:|---:|")
    for name, label in (
        ("parse", "parse the request"),
        ("decode", "parse + decode into SDK spans"),
        ("bare", "no stages: decode, forward"),
        ("full", "full pipeline, forward as received"),
        ("sdk", "full pipeline, SDK re-encode"),
    ):
        us = cost[name] + (cost["parse"] if name == "decode" else 0.0)
        print(f"| {label} | {us:.0f} | {1e6 / us:,.0f} |")
        if name == "full":
            for stage in (k for k in cost if k not in ("parse", "decode", "bare", "full", "sdk")):
                print(f"| … of which {stage} | {cost[stage]:.0f} | |")
    print(
        f"\nsustainable (closed loop): {sustained:,.0f} spans/s, collector CPU {closed['cpu_cores']:.2f} cores\n"
    )
    print(
        "| load | offered spans/s | accepted | refused | delivered spans/s | p50 ms | p99 ms | peak RSS MB | collector CPU (cores) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for factor, rate, r in rows:
        print(
            f"| {factor}x | {r['offered']:,.0f} | {r['accepted']:,} | {r['refused']:,} | {r['delivered_per_s']:,.0f} "
            f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['peak_rss_mb']:.0f} | {r['cpu_cores']:.2f} |"
        )


if __name__ == "__main__":
    main()
