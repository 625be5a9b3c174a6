"""The ``frictionlens`` command: ``demo``, ``report``, ``review``, ``rules`` and ``collector``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from frictionlens.exporters.report import Report

#: the HTML report's file name in the demo's out dir
DEMO_HTML = "report.html"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="frictionlens", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run a scripted, instrumented LLM app and report on it")
    demo.add_argument("--calls", type=int, default=900, help="approximate LLM calls (default 900)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--out",
        default=".frictionlens/demo",
        help="store folder; the HTML report goes there too, as report.html (default .frictionlens/demo)",
    )
    report = sub.add_parser("report", help="summarise a local store or an OTLP-JSON traces file")
    report.add_argument(
        "path", nargs="?", default=None, help="data dir or traces file (default: the data dir)"
    )
    report.add_argument(
        "--json", action="store_true", help="machine-readable output (schema in docs/report.md)"
    )
    report.add_argument(
        "--html",
        metavar="OUT",
        help="also write a self-contained HTML report with charts to OUT "
        "(needs: pip install 'frictionlens[report]')",
    )
    report.add_argument(
        "--since",
        metavar="T",
        help="only spans starting, and metric points taken, at or after T: "
        "an ISO-8601 time (2026-11-26T14:00:00Z; UTC unless an offset is given) or a duration "
        "back from now: a number and s, m, h, d or w (90s, 30m, 2h, 1d, 1.5w)",
    )
    review = sub.add_parser(
        "review",
        help="review flagged conversations in the browser; verdicts measure each signal's precision and recall",
        description="Serve the review queue of a local store or an OTLP-JSON traces file: every flagged "
        "conversation and a blind random sample of the others. Verdicts are appended to that store as "
        "frictionlens.review spans (and exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set); "
        "`frictionlens report` then measures precision and recall from them. "
        "Needs: pip install 'frictionlens[review]'",
    )
    review.add_argument(
        "path", nargs="?", default=None, help="data dir or traces file (default: the data dir)"
    )
    review.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    review.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    review.add_argument(
        "--token",
        default=os.environ.get("FRICTIONLENS_REVIEW_TOKEN"),
        help="require this token (?token=... once per browser session); required when --host is "
        "not a loopback address (default: FRICTIONLENS_REVIEW_TOKEN)",
    )
    review.add_argument(
        "--sample",
        type=float,
        default=None,
        metavar="RATE",
        help="share of unflagged conversations drawn into the queue to count misses (default 0.02)",
    )
    review.add_argument(
        "--trace-url",
        default=os.environ.get("FRICTIONLENS_TRACE_URL"),
        metavar="TEMPLATE",
        help="link to each trace in your trace viewer, with {trace_id}, {span_id}, {conversation_id}, "
        "{start_s}, {end_s}; e.g. http://localhost:16686/trace/{trace_id} for Jaeger "
        "(default: FRICTIONLENS_TRACE_URL)",
    )
    rules = sub.add_parser(
        "rules", help="generate alert rules (Prometheus rule file or Honeycomb triggers)"
    )
    rules.add_argument("--target", choices=("prometheus", "honeycomb"), required=True)
    rules.add_argument(
        "--config", default=None, help="TOML alert config (default: built-in defaults)"
    )
    rules.add_argument("-o", "--out", default=None, help="output file (default: stdout)")
    coll = sub.add_parser(
        "collector",
        help="run the signal pipeline as an OTLP gateway: receive, enrich, forward",
        description="Receive OTLP traces, run the signal pipeline on them and forward enriched spans and "
        "metrics over OTLP (--forward, else the OTEL_EXPORTER_OTLP_* variables, else the local store).",
    )
    coll.add_argument(
        "--grpc",
        default="127.0.0.1:4317",
        help="gRPC host:port, 'off' to disable (default 127.0.0.1:4317)",
    )
    coll.add_argument(
        "--http",
        default="127.0.0.1:4318",
        help="HTTP host:port, 'off' to disable (default 127.0.0.1:4318)",
    )
    coll.add_argument(
        "--forward",
        default=None,
        help="base URL of the next OTLP hop (protocol: OTEL_EXPORTER_OTLP_PROTOCOL)",
    )
    coll.add_argument(
        "--token",
        default=os.environ.get("FRICTIONLENS_COLLECTOR_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (default: FRICTIONLENS_COLLECTOR_TOKEN)",
    )
    coll.add_argument(
        "--tls-cert", default=None, help="PEM certificate chain: serve gRPC and HTTPS over TLS"
    )
    coll.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    coll.add_argument(
        "--queue",
        type=int,
        default=None,
        help="spans waiting for the pipeline before senders get 429 / "
        "RESOURCE_EXHAUSTED (default 8192)",
    )
    coll.add_argument(
        "--data-dir",
        default=None,
        help="keep learned baselines here across restarts (default: "
        "FRICTIONLENS_DATA_DIR when set, else not kept)",
    )
    args = parser.parse_args(argv)
    if args.version:
        from frictionlens import __version__

        print(__version__)
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command == "report":
        return _report(args)
    if args.command == "review":
        return _review(args)
    if args.command == "rules":
        return _rules(args)
    if args.command == "collector":
        return _collector(parser, args)
    parser.print_help()
    return 0


def _demo(args: argparse.Namespace) -> int:
    import shutil

    from frictionlens import demo
    from frictionlens.exporters import report

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    try:
        from rich.progress import track

        def progress(it, total):
            return track(it, total=total, description="simulated users, JSON route, agent")
    except ImportError:
        progress = None
    if importlib.util.find_spec("openai") is None:
        print(
            "frictionlens demo drives the openai SDK: pip install 'frictionlens[demo,report]'",
            file=sys.stderr,
        )
        return 2
    demo.run(out, calls=args.calls, seed=args.seed, progress=progress)
    rep = report.load(out)
    print(report.render(rep))
    print(f"\nstore: {out / 'traces.jsonl'}  (read it again with: frictionlens report {out})")
    if importlib.util.find_spec("matplotlib") is not None:
        _html(rep, out / DEMO_HTML)
    return 0


def _html(rep: Report, out: str | Path, quiet_stdout: bool = False) -> int:
    """Write the HTML report and say where (on stderr when stdout carries JSON); 2 with the
    install hint if matplotlib is missing."""
    from frictionlens.exporters import report_html

    try:
        path = report_html.write_html(rep, out)
    except report_html.MissingDependency as exc:
        print(f"frictionlens: {exc}", file=sys.stderr)
        return 2
    print(f"HTML report: {path.resolve()}", file=sys.stderr if quiet_stdout else sys.stdout)
    return 0


def _report(args: argparse.Namespace) -> int:
    from frictionlens.exporters import report

    try:
        since = None if args.since is None else report.parse_since(args.since)
    except ValueError as exc:
        print(f"frictionlens: {exc}", file=sys.stderr)
        return 2
    path = _store(args.path, "report")
    if path is None:
        return 1
    rep = report.load(path, since_ns=since, metrics=bool(args.html))
    print(rep.to_json() if args.json else report.render(rep))
    return _html(rep, args.html, quiet_stdout=args.json) if args.html else 0


def _store(given: str | None, command: str) -> Path | None:
    """The store to read (a data dir or a traces file); None, with the reason said, if it has no traces."""
    from frictionlens.config import Options
    from frictionlens.exporters.filestore import TRACES_FILE

    path = Path(given or Options.resolve().data_dir)
    as_dir = path.is_dir() or (not path.exists() and not path.suffix)
    traces = path / TRACES_FILE if as_dir else path
    if not traces.is_file():
        print(
            f"frictionlens: no traces at {traces}. Run an app that calls frictionlens.instrument() "
            "(with no OTLP endpoint it writes there), or `frictionlens demo`, or name a store "
            f"or an OTLP-JSON traces file: frictionlens {command} PATH",
            file=sys.stderr,
        )
        return None
    return path


def _review(args: argparse.Namespace) -> int:
    import signal

    try:
        from frictionlens.review.app import check_trace_url, create_app, is_loopback, serve
    except ImportError as exc:
        print(
            f"frictionlens review needs the review extra: pip install 'frictionlens[review]' ({exc})",
            file=sys.stderr,
        )
        return 2
    from frictionlens.review.queue import DEFAULT_SAMPLE_RATE, ReviewStore
    from frictionlens.review.verdicts import VerdictWriter

    if not is_loopback(args.host) and not args.token:
        print(
            f"frictionlens review: --host {args.host} can be reached from other machines, so it "
            "needs a token: --token TOKEN or FRICTIONLENS_REVIEW_TOKEN (reviewers then open "
            "http://HOST:PORT/?token=TOKEN once). Nothing was started.",
            file=sys.stderr,
        )
        return 2
    rate = DEFAULT_SAMPLE_RATE if args.sample is None else args.sample
    if not 0.0 <= rate <= 1.0:
        print("frictionlens review: --sample must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        trace_url = check_trace_url(args.trace_url)
    except ValueError as exc:
        print(f"frictionlens review: {exc}", file=sys.stderr)
        return 2
    path = _store(args.path, "review")
    if path is None:
        return 1
    store = ReviewStore(path, rate)
    writer = VerdictWriter(path)
    app = create_app(store, writer, token=args.token, trace_url=trace_url)
    try:
        server = serve(app, args.host, args.port)
    except OSError as exc:
        print(
            f"frictionlens review: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host
    q = store.queue
    print(
        f"frictionlens review: {len(q.items)} conversations to review ({q.flagged} flagged, "
        f"{len(q.items) - sum(i.flagged for i in q.items)} drawn from {q.unflagged} unflagged) "
        f"on http://{host}:{server.effective_port}/"
        + ("  (token required: add ?token=... once)" if args.token else ""),
        flush=True,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()  # returns on Ctrl-C or SIGTERM
    finally:
        writer.shutdown()
    print(f"frictionlens review stopped; verdicts are in {path}", flush=True)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _rules(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frictionlens.exporters import rules

    text = rules.generate(args.target, rules.RulesConfig.load(args.config))
    if args.out:
        Path(args.out).write_text(text, "utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _collector(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import signal
    import threading

    try:
        from frictionlens.collector.gateway import DEFAULT_QUEUE_SPANS, Gateway, collector_options
    except ImportError as exc:
        print(
            f"frictionlens collector needs the collector extra: pip install 'frictionlens[collector]' ({exc})",
            file=sys.stderr,
        )
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    persist = args.data_dir is not None or "FRICTIONLENS_DATA_DIR" in os.environ
    options = collector_options(**({"data_dir": args.data_dir} if args.data_dir else {}))
    gateway = Gateway(
        grpc_endpoint=None if args.grpc == "off" else args.grpc,
        http_endpoint=None if args.http == "off" else args.http,
        forward=args.forward,
        bearer_token=args.token or None,
        tls=(args.tls_cert, args.tls_key) if args.tls_cert else None,
        queue_spans=args.queue or DEFAULT_QUEUE_SPANS,
        options=options,
        persist=persist,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    gateway.start()
    receiver = gateway.receiver
    print(
        f"frictionlens collector: grpc={receiver.grpc_endpoint or 'off'} http={receiver.http_url or 'off'}",
        flush=True,
    )
    while not stop.wait(3600):
        pass
    gateway.stop()
    print(f"frictionlens collector stopped: {gateway.totals}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
