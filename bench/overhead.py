"""Per-call overhead of OpenAI and Anthropic instrumentation: frictionlens against its peers.

Measures a non-streaming call and a 50-event stream (optionally their async forms) through
the real ``openai`` SDK (``chat.completions.create``) and the real ``anthropic`` SDK
(``messages.create``, with ``stream=True`` for the stream) over an in-process mock
transport, for:

* none          -- the SDK alone (each process measures its own)
* frictionlens  -- ``frictionlens.instrument(exporter="none", tracer_provider=tp, meter_provider=mp)``
* bare span     -- reference: one SDK span with a dozen attributes around the SDK call (OpenAI)
* official      -- ``opentelemetry-instrumentation-openai-v2``
* traceloop     -- Traceloop's ``opentelemetry-instrumentation-openai``
* traceloop-anthropic     -- Traceloop's ``opentelemetry-instrumentation-anthropic``
* openinference-anthropic -- ``openinference-instrumentation-anthropic``

Every instrumented variant gets the same providers: an SDK TracerProvider whose spans go to a
SimpleSpanProcessor with an exporter that drops them, and an SDK MeterProvider with an
in-memory reader collected once per variant's 20 calls of a mode, as a periodic reader would
every 60 s in an app whose calls are seconds apart (the collection's CPU is charged to the
calls: instrumentations that record at collection pay for it there); so rows compare
instrumentation, not export.

Instrumentations that patch the same SDK methods cannot share an interpreter, so each group
runs in its own worker process, and each worker also measures the uninstrumented SDK by
calling the original ``create`` (captured before instrumenting) in the same rounds. The
coordinator runs one worker at a time, round by round, rotating the order of workers and of
variants within a worker, so machine noise hits all variants alike. A row's overhead is the
median over rounds of (variant statistic - baseline statistic) of the same worker and round.

    python bench/overhead.py                                  # ~2-3 minutes
    python bench/overhead.py --quick                          # a few seconds, smoke test
    python bench/overhead.py --peer-python <venv>/bin/python  # peer rows from another venv
    python bench/overhead.py --one-at-a-time                  # each call flushed, then idle
    python bench/overhead.py --only frictionlens-anthropic,traceloop-anthropic,openinference-anthropic

The frictionlens rows run in the interpreter that runs this script; peers that are not
importable by the interpreter running them print "not installed".
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

GROUPS: dict[str, dict[str, Any]] = {
    # group -> the SDK it calls, the variants it measures (besides "none"), the distributions
    # it needs and reports
    "frictionlens": {
        "sdk": "openai",
        "variants": ["frictionlens", "bare span"],
        "dists": ["frictionlens"],
        "peer": False,
    },
    "official": {
        "sdk": "openai",
        "variants": ["official"],
        "dists": ["opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai"],
        "peer": True,
    },
    "traceloop": {
        "sdk": "openai",
        "variants": ["traceloop"],
        "dists": ["opentelemetry-instrumentation-openai"],
        "peer": True,
    },
    "frictionlens-anthropic": {
        "sdk": "anthropic",
        "variants": ["frictionlens"],
        "dists": ["frictionlens"],
        "peer": False,
    },
    "traceloop-anthropic": {
        "sdk": "anthropic",
        "variants": ["traceloop-anthropic"],
        "dists": ["opentelemetry-instrumentation-anthropic"],
        "peer": True,
    },
    "openinference-anthropic": {
        "sdk": "anthropic",
        "variants": ["openinference-anthropic"],
        "dists": ["openinference-instrumentation-anthropic"],
        "peer": True,
    },
}
LABELS = {
    "frictionlens": "**frictionlens**",
    "bare span": "bare SDK span, 12 attributes (reference)",
    "official": "opentelemetry-instrumentation-openai-v2 (official)",
    "traceloop": "opentelemetry-instrumentation-openai (Traceloop)",
    "traceloop-anthropic": "opentelemetry-instrumentation-anthropic (Traceloop)",
    "openinference-anthropic": "openinference-instrumentation-anthropic",
}
SDKS = {"openai": "OpenAI `chat.completions.create`", "anthropic": "Anthropic `messages.create`"}
SYNC_MODES = ("chat", "stream")
ASYNC_MODES = ("achat", "astream")


# ======================================================================================
# worker: one process, one group of variants
# ======================================================================================
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class _DropExporter:
    """A span exporter that drops everything, counting spans and their attributes."""

    def __init__(self) -> None:
        self.spans = 0
        self.attributes = 0

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        for span in spans:
            self.spans += 1
            self.attributes += len(span.attributes or ())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _providers(exporter: _DropExporter) -> tuple[Any, Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return tp, MeterProvider(metric_readers=[reader]), reader


def _instrument(name: str, tp: Any, mp: Any) -> Any:
    """Turn variant ``name`` on; returns what the bare-span variant needs (its tracer)."""
    if name == "frictionlens":
        import frictionlens

        frictionlens.instrument(
            exporter="none", tracer_provider=tp, meter_provider=mp, salt="bench"
        )
    elif name == "official":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    elif name == "traceloop":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    elif name == "traceloop-anthropic":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    elif name == "openinference-anthropic":
        from openinference.instrumentation.anthropic import (
            AnthropicInstrumentor as OpenInferenceInstrumentor,
        )

        OpenInferenceInstrumentor().instrument(tracer_provider=tp)  # it records no metrics
    elif name == "bare span":
        return tp.get_tracer("bench.bare_span")
    return None


def _bare_span(tracer: Any, raw: Callable[..., Any], stream: bool) -> Callable[..., Any]:
    """Reference: what one span with a dozen attributes costs around the SDK call."""
    from opentelemetry.trace import SpanKind

    request = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": _common.MODEL,
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.stream": stream,
    }

    def respond(span: Any, rid: str, model: str, reason: str) -> None:
        span.set_attributes(
            {
                "gen_ai.response.id": rid,
                "gen_ai.response.model": model,
                "gen_ai.response.finish_reasons": (reason,),
                "gen_ai.usage.output_tokens": 88,
            }
        )

    if stream:

        def call(self: Any, **kw: Any) -> Any:
            span = tracer.start_span(
                f"chat {_common.MODEL}", kind=SpanKind.CLIENT, attributes=request
            )
            last = None
            for last in raw(self, **kw):
                pass
            respond(span, last.id, last.model, last.choices[0].finish_reason)
            span.end()
            return None  # consumed here, inside the span
    else:

        def call(self: Any, **kw: Any) -> Any:
            span = tracer.start_span(
                f"chat {_common.MODEL}", kind=SpanKind.CLIENT, attributes=request
            )
            resp = raw(self, **kw)
            respond(span, resp.id, resp.model, resp.choices[0].finish_reason)
            span.end()
            return resp

    return call


def _abare_span(tracer: Any, raw: Callable[..., Any], stream: bool) -> Callable[..., Any]:
    from opentelemetry.trace import SpanKind

    async def call(self: Any, **kw: Any) -> Any:
        span = tracer.start_span(
            f"chat {_common.MODEL}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": _common.MODEL,
                "server.address": "api.openai.com",
                "server.port": 443,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 512,
                "gen_ai.request.stream": stream,
            },
        )
        result = await raw(self, **kw)
        last = result
        if stream:
            async for last in result:
                pass
        span.set_attributes(
            {
                "gen_ai.response.id": last.id,
                "gen_ai.response.model": last.model,
                "gen_ai.response.finish_reasons": (last.choices[0].finish_reason,),
                "gen_ai.usage.output_tokens": 88,
            }
        )
        span.end()
        return None if stream else result  # a stream is consumed here, inside the span

    return call


def _raw_create(sdk: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The SDK's own sync and async create methods (capture them before instrumenting)."""
    if sdk == "anthropic":
        from anthropic.resources.messages import AsyncMessages, Messages

        return Messages.create, AsyncMessages.create
    from openai.resources.chat.completions import AsyncCompletions, Completions

    return Completions.create, AsyncCompletions.create


class _Worker:
    def __init__(
        self, group: str, calls: int, asynchronous: bool, idle_s: float | None = None
    ) -> None:
        self.sdk = GROUPS[group]["sdk"]
        self.calls = calls
        self.idle_s = idle_s
        """one call at a time: each call is followed by a flush and this much idle time"""
        self.modes = SYNC_MODES + (ASYNC_MODES if asynchronous else ())
        # one exporter and tracer provider per variant: spans are counted per variant after a
        # flush at the end of each mode, since a pipeline may export from a worker thread
        self.exporters: dict[str, _DropExporter] = {}
        self.tracer_providers: dict[str, Any] = {}
        raw, araw = _raw_create(self.sdk)
        shared = _DropExporter()
        tp, mp, self.metric_reader = _providers(shared)
        make = _common.anthropic_client if self.sdk == "anthropic" else _common.openai_client
        self.clients = {
            "chat": make(stream=False),
            "stream": make(stream=True),
            "achat": make(stream=False, asynchronous=True),
            "astream": make(stream=True, asynchronous=True),
        }
        self.calls_by_variant: dict[str, dict[str, Callable[..., Any]]] = {
            "none": {"chat": raw, "stream": raw, "achat": araw, "astream": araw}
        }
        for name in GROUPS[group]["variants"]:
            if name == "bare span":
                own = _DropExporter()
                btp, _, _ = _providers(own)  # its own provider: no other processor in its way
                self.exporters[name], self.tracer_providers[name] = own, btp
                tracer = _instrument(name, btp, mp)
                self.calls_by_variant[name] = {
                    "chat": _bare_span(tracer, raw, False),
                    "stream": _bare_span(tracer, raw, True),
                    "achat": _abare_span(tracer, araw, False),
                    "astream": _abare_span(tracer, araw, True),
                }
            else:
                self.exporters[name], self.tracer_providers[name] = shared, tp
                _instrument(name, tp, mp)
                self.calls_by_variant[name] = {
                    m: None for m in (*SYNC_MODES, *ASYNC_MODES)
                }  # via the client
        self.loop = asyncio.new_event_loop() if asynchronous else None
        self.seq = 0

    def _kwargs(self, stream: bool) -> dict[str, Any]:
        self.seq += 1
        kw: dict[str, Any]
        if self.sdk == "anthropic":  # this SDK takes no temperature for current models
            system, msgs = _common.anthropic_messages(self.seq)
            kw = {
                "model": _common.ANTHROPIC_MODEL,
                "system": system,
                "messages": msgs,
                "max_tokens": 512,
            }
        else:
            kw = {
                "model": _common.MODEL,
                "messages": _common.messages(self.seq),
                "temperature": 0.2,
                "max_tokens": 512,
            }
        if stream:
            kw["stream"] = True
        return kw

    def _targets(self, mode: str) -> dict[str, Callable[..., Any]]:
        client = self.clients[mode]
        resource = client.messages if self.sdk == "anthropic" else client.chat.completions
        out = {}
        for name, fns in self.calls_by_variant.items():
            fn = fns[mode]
            out[name] = resource.create if fn is None else functools.partial(fn, resource)
        return out

    def round(self, number: int) -> dict[str, Any]:
        """``calls`` calls per variant and mode, alternating variants call by call (the order
        rotating every call), so that slow machine drift hits every variant alike.

        Work of background threads (a pipeline worker) is taken out of the call it happened
        to interrupt and charged, as CPU, to the group's instrumentation: a call's time is
        its wall time less the CPU other threads used meanwhile (under the GIL, time the
        calling thread waited), and the end-of-mode flush drains what was still queued, then
        the metric reader collects (as a periodic reader would)."""
        names = list(self.calls_by_variant)
        out: dict[str, Any] = {n: {} for n in names}
        perf, cpu, own = time.perf_counter_ns, time.process_time_ns, time.thread_time_ns
        owner = next(n for n in names if n not in ("none", "bare span"))
        for mode in self.modes:
            stream = mode in ("stream", "astream")
            targets = self._targets(mode)
            schedule = []
            for j in range(self.calls):
                k = (number + j) % len(names)
                for name in names[k:] + names[:k]:
                    schedule.append((name, self._kwargs(stream)))
            times: dict[str, list[int]] = {n: [] for n in names}
            cpus: dict[str, list[int]] = {n: [] for n in names}
            counts_before = {n: (e.spans, e.attributes) for n, e in self.exporters.items()}
            gc.collect()
            background = 0

            def record(name: str, t0: int, t1: int, c0: int, c1: int, o0: int, o1: int) -> None:
                nonlocal background
                others = (c1 - c0) - (o1 - o0)
                times[name].append(t1 - t0 - others)
                if self.idle_s is None:
                    background += others
                    cpus[name].append(o1 - o0)
                    return
                # one at a time: the call, its flush and the idle time after it are charged
                # to the call, every thread of the process included
                tp = self.tracer_providers.get(name)
                if tp is not None:
                    tp.force_flush()
                time.sleep(self.idle_s)
                cpus[name].append(cpu() - c0)

            if mode in SYNC_MODES:
                for name, kw in schedule:
                    c0, o0 = cpu(), own()
                    t0 = perf()
                    result = targets[name](**kw)
                    if stream and result is not None:
                        for _ in result:
                            pass
                    t1 = perf()
                    record(name, t0, t1, c0, cpu(), o0, own())
            else:

                async def run() -> None:
                    for name, kw in schedule:
                        c0, o0 = cpu(), own()
                        t0 = perf()
                        result = await targets[name](**kw)
                        if stream and result is not None:
                            async for _ in result:
                                pass
                        t1 = perf()
                        record(name, t0, t1, c0, cpu(), o0, own())

                assert self.loop is not None
                self.loop.run_until_complete(run())
            c0 = cpu()
            for tp in self.tracer_providers.values():
                tp.force_flush()
            self.metric_reader.get_metrics_data()  # a periodic reader's collection
            background += cpu() - c0
            for name in names:
                exporter = self.exporters.get(name)
                s0, a0 = counts_before.get(name, (0, 0))
                out[name][mode] = {
                    "times": times[name],
                    "cpu": sum(cpus[name]) + (background if name == owner else 0),
                    "spans": exporter.spans - s0 if exporter else 0,
                    "attrs": exporter.attributes - a0 if exporter else 0,
                }
        return out


def _worker_main(
    group: str, calls: int, warmup: int, asynchronous: bool, idle_s: float | None
) -> int:
    proto = os.fdopen(os.dup(1), "w", buffering=1)  # our protocol; anything printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj: Any) -> None:
        proto.write(json.dumps(obj) + "\n")

    sdk = GROUPS[group]["sdk"]
    env = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "openai": _version("openai"),
        "anthropic": _version("anthropic"),
        "httpx2": _version("httpx2"),
        "opentelemetry-sdk": _version("opentelemetry-sdk"),
        "wrapt": _version("wrapt"),
        **{d: _version(d) for d in GROUPS[group]["dists"]},
    }
    missing = [d for d in GROUPS[group]["dists"] if env.get(d) is None]
    if missing or env[sdk] is None:
        send({"status": "not installed", "env": env, "detail": ", ".join(missing or [sdk])})
        return 0
    if "frictionlens" in GROUPS[group]["dists"]:
        import frictionlens

        if not hasattr(frictionlens, "instrument"):  # e.g. an editable install older than the tree
            send(
                {
                    "status": "error",
                    "env": env,
                    "detail": "`import frictionlens` found no package here: "
                    "reinstall it (pip install -e .)",
                }
            )
            return 0
    try:
        worker = _Worker(group, warmup, asynchronous, idle_s)
        worker.round(0)  # warm caches, lazy imports, pydantic validators
        worker.calls = calls
    except Exception as exc:  # a peer that does not work with this SDK: say so, keep the others
        import traceback

        traceback.print_exc()
        send({"status": "error", "env": env, "detail": f"{type(exc).__name__}: {exc}"[:200]})
        return 0
    send({"status": "ready", "env": env})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        send({"round": worker.round(int(cmd))})
    return 0


# ======================================================================================
# coordinator
# ======================================================================================
class _Proc:
    def __init__(self, group: str, python: str, args: argparse.Namespace, warmup: int) -> None:
        self.group = group
        self.stderr = tempfile.TemporaryFile()
        cmd = [
            python,
            str(Path(__file__).resolve()),
            "--worker",
            group,
            "--calls",
            str(args.calls),
            "--warmup",
            str(warmup),
        ]
        cmd += ["--async"] if args.asynchronous else []
        cmd += ["--one-at-a-time"] if args.one_at_a_time else []
        cmd += ["--idle-ms", str(args.idle_ms)]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
        )
        self.hello: dict[str, Any] = {}
        self.rounds: list[dict[str, Any]] = []

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stderr.seek(0)
            tail = self.stderr.read().decode(errors="replace").strip().splitlines()[-3:]
            return {
                "status": "error",
                "detail": " | ".join(tail) or f"worker exited ({self.proc.wait()})",
            }
        return json.loads(line)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.send("quit")
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _us(ns: float) -> str:
    us = ns / 1000.0
    if us != us:  # NaN
        return "–"
    return f"{us:.0f}" if abs(us) >= 10 else f"{us:.1f}"


def _stats(proc: _Proc, variant: str, mode: str, calls: int) -> dict[str, float]:
    """Overheads against this process' own baseline, measured in the same rounds."""
    med, pct = _common.median, _common.percentile
    d_med, d_cpu, pooled, base, spans, attrs = [], [], [], [], 0, 0
    for rnd in proc.rounds:
        v, b = rnd[variant][mode], rnd["none"][mode]
        d_med.append(med(v["times"]) - med(b["times"]))
        d_cpu.append((v["cpu"] - b["cpu"]) / max(1, len(v["times"])))
        pooled.extend(v["times"])
        base.extend(b["times"])
        spans += v["spans"]
        attrs += v["attrs"]
    n = len(pooled)
    # standard error of the median of the per-round differences (robust: IQR-based sigma)
    spread = (pct(d_med, 75) - pct(d_med, 25)) / 1.349 * 1.2533 / max(1, len(d_med)) ** 0.5
    return {
        "median": med(d_med),
        "err": spread,
        "p95": pct(pooled, 95) - pct(base, 95),
        "cpu": med(d_cpu),
        "raw": med(pooled),
        "spans": spans / n if n else float("nan"),
        "attrs": attrs / spans if spans else 0.0,
    }


def _table(procs: list[_Proc], modes: tuple[str, str], calls: int) -> list[str]:
    a, s = modes
    pre = "async " if a.startswith("a") else ""
    lines = [
        f"| variant | {pre}chat median µs | {pre}chat p95 µs | {pre}stream median µs | {pre}stream p95 µs "
        f"| CPU µs/call (chat / stream) | raw median µs (chat / stream) | spans/call, attrs/span |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for proc in procs:
        status = proc.hello.get("status")
        if status != "ready":
            for name in GROUPS[proc.group]["variants"]:
                detail = proc.hello.get("detail", "")
                lines.append(
                    f"| {LABELS[name]} | {status}{': ' + detail if detail and status != 'not installed' else ''} "
                    "| | | | | | |"
                )
            continue
        base = {
            m: _common.median([t for r in proc.rounds for t in r["none"][m]["times"]])
            for m in modes
        }
        lines.append(
            f"| none (baseline of the {proc.group} process) | 0 | 0 | 0 | 0 | 0 "
            f"| {_us(base[a])} / {_us(base[s])} | 0 |"
        )
        for name in GROUPS[proc.group]["variants"]:
            c, st = _stats(proc, name, a, calls), _stats(proc, name, s, calls)
            lines.append(
                f"| {LABELS[name]} | {_us(c['median'])} ±{_us(c['err'])} | {_us(c['p95'])} "
                f"| {_us(st['median'])} ±{_us(st['err'])} | {_us(st['p95'])} "
                f"| {_us(c['cpu'])} / {_us(st['cpu'])} | {_us(c['raw'])} / {_us(st['raw'])} "
                f"| {c['spans']:.2f}, {c['attrs']:.0f} |"
            )
    return lines


def _environment(procs: list[_Proc], args: argparse.Namespace, calibration: str) -> list[str]:
    envs = [p.hello.get("env", {}) for p in sorted(procs, key=lambda p: not _ours(p.group))]
    ours = next((e for e in envs if e), {})
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        f"- python {ours.get('python', platform.python_version())} "
        f"({ours.get('implementation', platform.python_implementation())}), "
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs",
        f"- openai {ours.get('openai')}, anthropic {ours.get('anthropic')}, httpx2 {ours.get('httpx2')}, opentelemetry-sdk {ours.get('opentelemetry-sdk')}, "
        f"wrapt {ours.get('wrapt')}, frictionlens {ours.get('frictionlens')}",
    ]
    for p in procs:
        if _ours(p.group):
            continue
        env = p.hello.get("env", {})
        dists = ", ".join(f"{d} {env.get(d) or 'not installed'}" for d in GROUPS[p.group]["dists"])
        where = "peer interpreter" if args.peer_python else "this interpreter"
        extra = ""
        for key in ("python", GROUPS[p.group]["sdk"], "opentelemetry-sdk", "wrapt"):
            if env.get(key) and env.get(key) != ours.get(key):
                extra += f", {key} {env[key]}"
        lines.append(f"- {dists} ({where}{extra})")
    chars_in = sum(len(m["content"]) for m in _common.messages(0))
    lines.append(
        f"- {args.rounds} rounds × {args.calls} calls per variant and mode; in-process mock transport "
        f"(httpx2.MockTransport); request: 4 messages, ~{chars_in} chars, the last one new on every call; "
        f"answer: ~{len(_common.ANSWER)} chars, as one completion or a 50-chunk stream"
    )
    lines.append(f"- machine speed, for scaling to other machines: {calibration}")
    return lines


def _ours(group: str) -> bool:
    return "frictionlens" in GROUPS[group]["dists"]


def _calibration() -> str:
    """Two tiny timings that say how fast this machine runs interpreter code and locks."""
    import threading
    import timeit

    lock = threading.Lock()

    def locked() -> None:
        with lock:
            pass

    loop = min(timeit.repeat("sum((1, 2, 3))", number=200_000, repeat=5)) / 200_000
    held = min(timeit.repeat(locked, number=200_000, repeat=5)) / 200_000
    return (
        f"`sum((1, 2, 3))` {loop * 1e9:.0f} ns, uncontended `with lock:` call {held * 1e9:.0f} ns"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds (default 30; --quick: 2)"
    )
    ap.add_argument(
        "--calls",
        type=int,
        default=None,
        help="calls per variant, mode and round (default 20; --quick: 8)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="a few seconds: a smoke test, not a measurement"
    )
    ap.add_argument(
        "--async",
        dest="asynchronous",
        action="store_true",
        help="also measure AsyncOpenAI (second table)",
    )
    ap.add_argument(
        "--peer-python",
        default=None,
        help="interpreter for the peer rows (a venv with the peer instrumentations); default: this one",
    )
    ap.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="each call alone: then tracer_provider.force_flush() and --idle-ms of idle time",
    )
    ap.add_argument(
        "--idle-ms", type=float, default=20.0, help="idle time after each lone call (default 20)"
    )
    ap.add_argument("--only", default=None, help=f"comma-separated groups: {','.join(GROUPS)}")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 30
    if args.calls is None:
        args.calls = 8 if args.quick else 20
    warmup = args.warmup if args.warmup is not None else (3 if args.quick else 10)
    if args.worker:
        idle_s = args.idle_ms / 1000 if args.one_at_a_time else None
        return _worker_main(args.worker, args.calls, warmup, args.asynchronous, idle_s)

    calibration = _calibration()  # before the workers start, on a quiet machine
    groups = (
        list(GROUPS) if not args.only else [g.strip() for g in args.only.split(",") if g.strip()]
    )
    procs = [
        _Proc(
            g,
            (args.peer_python or sys.executable) if GROUPS[g]["peer"] else sys.executable,
            args,
            warmup,
        )
        for g in groups
    ]
    started = time.monotonic()
    try:
        for p in procs:
            p.hello = p.read()
        live = [p for p in procs if p.hello.get("status") == "ready"]
        for r in range(args.rounds):
            k = r % max(1, len(live))
            for p in live[k:] + live[:k]:  # one worker measures at a time
                p.send(str(r))
                reply = p.read()
                if "round" not in reply:
                    p.hello = reply
                    live.remove(p)
                    continue
                p.rounds.append(reply["round"])
            print(
                f"round {r + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
            )
    finally:
        for p in procs:
            p.close()

    out = [
        "## Instrumentation overhead per call (µs, relative to each process' own uninstrumented SDK)",
        "",
    ]
    out += _environment(procs, args, calibration) + [""]
    for sdk, title in SDKS.items():
        mine = [p for p in procs if GROUPS[p.group]["sdk"] == sdk]
        if not mine:
            continue
        out += [f"### {title}", ""] + _table(mine, SYNC_MODES, args.calls) + [""]
        if args.asynchronous:
            out += _table(mine, ASYNC_MODES, args.calls) + [""]
    out += [
        "Overhead: median over rounds of (variant − baseline) per-round median call time, ± its standard "
        "error; a call's time is what the calling thread spent in it (wall time less the CPU background "
        "threads used meanwhile); p95: variant p95 − baseline p95 over all calls; CPU: the calling "
        "thread's CPU per call plus the background threads' CPU (a pipeline worker's, and the flush that "
        "drains it and the metric collection after each mode's calls) charged to the instrumentation, "
        "differenced per round like the median; "
        "raw: the variant's own median call time. Variants alternate call by call within a round. "
        "Peers run at their defaults (no logger provider given).",
    ]
    if args.one_at_a_time:
        out.append(
            f"One call at a time: each call is followed by `tracer_provider.force_flush()` and "
            f"{args.idle_ms:.0f} ms of idle time; its CPU is the whole process's from the call's "
            "start to the end of that idle time (flush and background threads included)."
        )
    if args.quick:
        out.append("(--quick: a smoke test; the numbers are not a measurement)")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
