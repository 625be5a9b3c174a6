"""The ``frictionlens`` command: ``demo``, ``report`` and ``rules``."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

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
    demo.add_argument("--out", default=".frictionlens/demo",
                      help="store folder; the HTML report goes there too, as report.html (default .frictionlens/demo)")
    report = sub.add_parser("report", help="summarise a local store or an OTLP-JSON traces file")
    report.add_argument("path", nargs="?", default=None, help="data dir or traces file (default: the data dir)")
    report.add_argument("--json", action="store_true", help="machine-readable output (schema in the README)")
    report.add_argument("--html", metavar="OUT", help="also write a self-contained HTML report with charts to OUT "
                        "(needs: pip install 'frictionlens[report]')")
    report.add_argument("--since", metavar="T", help="only spans starting, and metric points taken, at or after T: "
                        "an ISO-8601 time (2026-11-26T14:00:00Z; UTC unless an offset is given) or a duration "
                        "back from now: a number and s, m, h, d or w (90s, 30m, 2h, 1d, 1.5w)")
    rules = sub.add_parser("rules", help="generate alert rules (Prometheus rule file or Honeycomb triggers)")
    rules.add_argument("--target", choices=("prometheus", "honeycomb"), required=True)
    rules.add_argument("--config", default=None, help="TOML alert config (default: built-in defaults)")
    rules.add_argument("-o", "--out", default=None, help="output file (default: stdout)")
    args = parser.parse_args(argv)
    if args.version:
        from frictionlens import __version__

        print(__version__)
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command == "report":
        return _report(args)
    if args.command == "rules":
        return _rules(args)
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
    from frictionlens.config import Options
    from frictionlens.exporters import report

    try:
        since = None if args.since is None else report.parse_since(args.since)
    except ValueError as exc:
        print(f"frictionlens: {exc}", file=sys.stderr)
        return 2
    path = args.path or Options.resolve().data_dir
    rep = report.load(path, since_ns=since, metrics=bool(args.html))
    print(rep.to_json() if args.json else report.render(rep))
    return _html(rep, args.html, quiet_stdout=args.json) if args.html else 0


def _rules(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frictionlens.exporters import rules

    text = rules.generate(args.target, rules.RulesConfig.load(args.config))
    if args.out:
        Path(args.out).write_text(text, "utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
