"""The HTML report: the terminal report's sections plus charts, in one self-contained file.

Charts are drawn with matplotlib's Agg canvas (no display, no global pyplot state) and
embedded as base64 PNG, so the file opens anywhere without a network. Every number comes
from :class:`frictionlens.exporters.report.Report`; nothing is aggregated twice.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from frictionlens.exporters import report as rp
from frictionlens.exporters import review_quality
from frictionlens.processors.drift import stage as drift
from frictionlens.processors.friction.kinds import CATEGORIES, category

INSTALL_HINT = "the HTML report needs matplotlib: pip install 'frictionlens[report]'"
TIME_BINS = 20

_CSS = """body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left}th{background:#f3f3f3}
code{font-size:.95em}.bad{color:#b00020;font-weight:bold}img{max-width:100%;display:block;margin:.6em 0}
.note{color:#666;font-size:.9em}"""


class MissingDependency(ImportError):
    """matplotlib is not installed."""


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency(INSTALL_HINT) from exc
    return Figure, FigureCanvasAgg


def _figure(width: float = 10, height: float = 3.6) -> Any:
    figure, canvas = _matplotlib()
    fig = figure(figsize=(width, height), dpi=100)
    canvas(fig)
    return fig


def _img(fig: Any, alt: str) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _t0(rep: rp.Report) -> int:
    times = [r["time_unix_nano"] for r in rep.call_log] + [
        p["time_unix_nano"] for p in rep.drift_scores
    ]
    return min(times) if times else 0


def _s(t: int | None, t0: int) -> float:
    return ((t or t0) - t0) / 1e9


def _iso(t: int | None) -> str:
    return datetime.fromtimestamp(t / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _change(rep: rp.Report) -> tuple[str | None, int | None]:
    """The stream and time the report splits before/after at: a provider change, else the first alert."""
    if rep.provider_changes:
        return rep.provider_changes[0]["stream"], rep.provider_changes[0]["time_unix_nano"]
    if rep.drift:
        return rep.drift[0]["stream"], rep.drift[0]["time_unix_nano"]
    return None, None


def drift_chart(rep: rp.Report) -> str | None:
    """Drift scores over time on the streams that alerted, alert markers, provider changes."""
    alerted = {d["stream"] for d in rep.drift}
    if not alerted:
        return None
    t0 = _t0(rep)
    fig = _figure()
    ax = fig.add_subplot()
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for p in rep.drift_scores:
        if p["stream"] in alerted and p["value"] is not None:
            series.setdefault((p["stream"], p["feature"]), []).append(
                (_s(p["time_unix_nano"], t0), p["value"])
            )
    for pts in series.values():
        pts.sort()
    for (stream, feature), pts in sorted(series.items()):
        if any(v > 0 for _, v in pts):
            ax.plot(
                *zip(*pts), lw=1.2, label=feature if len(alerted) == 1 else f"{feature} ({stream})"
            )
    ax.scatter(
        [_s(d["time_unix_nano"], t0) for d in rep.drift],
        [d["value"] / d["threshold"] if d["threshold"] else 1.0 for d in rep.drift],
        marker="v",
        s=60,
        color="#b00020",
        zorder=3,
        label="drift alert",
    )
    for i, c in enumerate(rep.provider_changes):
        ax.axvline(
            _s(c["time_unix_nano"], t0),
            color="black",
            ls="--",
            lw=1.2,
            label=None if i else "provider change",
        )
    first = min((pts[0][0] for pts in series.values()), default=None)
    if first:  # before its first score a stream is learning its baseline
        ax.axvspan(0, first, color="#eeeeee", zorder=0, label="baseline warm-up")
    ax.axhline(1.0, color="#888", lw=0.8, ls=":")
    if (
        rep.call_log
    ):  # the whole run, so the alerts sit in context (scores exist only past each warm-up)
        ax.set_xlim(0, _s(rep.call_log[-1]["time_unix_nano"], t0))
    ax.set(
        title="Drift score (statistic / alarm threshold) over time",
        xlabel="seconds since the first call",
        ylabel="score (1 = alarm)",
    )
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    return _img(fig, "drift timeline")


def friction_chart(rep: rp.Report) -> str | None:
    """Share of LLM calls with friction of each category, in equal time bins."""
    calls = rep.call_log
    if not any(r["friction"] for r in calls):
        return None
    t0, t1 = calls[0]["time_unix_nano"], calls[-1]["time_unix_nano"]
    width = max(t1 - t0, 1) / TIME_BINS
    totals = [0.0] * TIME_BINS
    hits = {c: [0.0] * TIME_BINS for c in CATEGORIES}
    for r in calls:  # a sampled call counts as the calls it stands for
        b = min(int((r["time_unix_nano"] - t0) / width), TIME_BINS - 1)
        totals[b] += r["weight"]
        for cat in {category(k) for k in r["friction"]} - {None}:
            hits[cat][b] += r["weight"]
    x = [(i + 0.5) * width / 1e9 for i in range(TIME_BINS)]
    fig = _figure()
    ax = fig.add_subplot()
    for cat, counts in hits.items():
        ax.plot(
            x,
            [100 * h / n if n else 0 for h, n in zip(counts, totals)],
            marker="o",
            ms=3,
            label=cat,
        )
    ax.set(
        title="Friction rate over time by category",
        xlabel="seconds since the first call",
        ylabel="% of LLM calls",
    )
    ax.legend(fontsize=8)
    return _img(fig, "friction over time")


def length_chart(rep: rp.Report) -> str | None:
    """Output length on the changed stream, before and after the change."""
    stream, cut = _change(rep)
    rows = [
        r
        for r in rep.call_log
        if r["stream"] == stream and r["features"][drift.OUTPUT_CHARS] is not None
    ]
    before = [r for r in rows if r["time_unix_nano"] < (cut or 0)]
    after = [r for r in rows if r["time_unix_nano"] >= (cut or 0)]
    if not before or not after:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for part, label in ((before, "before the change"), (after, "after")):
        ax.hist(
            [r["features"][drift.OUTPUT_CHARS] for r in part],
            bins=30,
            weights=[r["weight"] for r in part],
            alpha=0.6,
            density=True,
            label=f"{label} ({round(sum(r['weight'] for r in part))} calls)",
        )
    ax.set(
        title=f"Output length distribution, {stream}", xlabel="output characters", ylabel="density"
    )
    ax.legend(fontsize=8)
    return _img(fig, "output length before and after")


def trajectory_chart(rep: rp.Report) -> str | None:
    """Steps of every task run against its budget; brute-force runs in red."""
    tasks = rep.tasks
    if not tasks:
        return None
    fig = _figure(height=3.2)
    ax = fig.add_subplot()
    x = range(len(tasks))
    ax.bar(
        x,
        [t["steps"] or 0 for t in tasks],
        color=["#b00020" if t["brute_force"] else "#4c72b0" for t in tasks],
        label="steps (red: brute force)",
    )
    budgets = [(i, t["expected"]) for i, t in enumerate(tasks) if t["expected"] is not None]
    if budgets:
        ax.scatter(*zip(*budgets), marker="_", s=900, color="black", zorder=3, label="budget")
    ax.set_xticks(
        list(x),
        [f"{t['task']} #{i + 1}" for i, t in enumerate(tasks)],
        rotation=30,
        ha="right",
        fontsize=7,
    )
    ax.set(title="Agent steps vs budget per task run", ylabel="LLM calls")
    ax.legend(fontsize=8)
    return _img(fig, "trajectory steps vs budget")


def _table(head: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _e(v: Any) -> str:
    return html.escape(rp.fmt_value(v))


def _pct(v: float) -> str:
    return f"{v:.1%}"


def _section(title: str, *parts: str | None) -> str:
    return f"<h2>{html.escape(title)}</h2>" + "".join(p for p in parts if p)


def _quality(rep: rp.Report) -> str:
    lines, tables = review_quality.describe(rep.review_quality)
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines) + "".join(
        _table(head, ((html.escape(c) for c in row) for row in rows)) for head, rows in tables
    )


def render_html(rep: rp.Report, title: str = "frictionlens report") -> str:
    """The whole report as one HTML document; raises :class:`MissingDependency` without matplotlib,
    even when there is nothing to chart yet, so a missing extra shows on the first run."""
    _matplotlib()
    review = _table(
        ("conversation", "score", "turns", "friction", "reason", "trace id"),
        (
            (
                _e(r["conversation"]),
                _e(r["score"]),
                _e(r["turns"]),
                _e(", ".join(f"{k}×{v}" for k, v in r["friction"].items() if v)),
                _e(r["reason"]),
                f"<code>{_e(r['trace_id'])}</code>",
            )
            for r in sorted(rep.review, key=lambda r: -(r["score"] or 0))
        ),
    )
    friction = _table(
        ("stream", "calls", "friction rate", *CATEGORIES, "kinds"),
        (
            (
                _e(r["stream"]),
                r["calls"],
                _pct(r["rate"]),
                *(_pct(r["categories"].get(c, 0.0)) for c in CATEGORIES),
                _e(", ".join(f"{k} {v:.1%}" for k, v in r["kinds"].items()) or "none"),
            )
            for r in rep.friction_rates
        ),
    )
    changes = "".join(
        f"<p>Provider change on <code>{_e(c['stream'])}</code> at {_iso(c['time_unix_nano'])}: "
        + ", ".join(
            f"{_e(f)} {_e(v['before'])} → {_e(v['after'])}" for f, v in c["changed"].items()
        )
        + "</p>"
        for c in rep.provider_changes
    )
    alerts = _table(
        (
            "time (UTC)",
            "stream",
            "feature",
            "suspected cause",
            "value / threshold",
            "before",
            "after",
            "trace id",
        ),
        (
            (
                _iso(d["time_unix_nano"]),
                _e(d["stream"]),
                _e(d["feature"]),
                _e(d["cause"]),
                f"{_e(d['value'])} / {_e(d['threshold'])}",
                _e(d["before"]),
                _e(d["after"]),
                f"<code>{_e(d['trace_id'])}</code>",
            )
            for d in rep.drift
        ),
    )
    tasks = _table(
        (
            "task",
            "steps",
            "budget",
            "tool calls",
            "efficiency",
            "outcome",
            "brute force",
            "trace id",
        ),
        (
            (
                _e(t["task"]),
                _e(t["steps"]),
                _e(t["expected"]),
                _e(t["tool_calls"]),
                _e(t["efficiency"]),
                _e(t["outcome"]),
                '<span class="bad">yes</span>' if t["brute_force"] else "no",
                f"<code>{_e(t['trace_id'])}</code>",
            )
            for t in rep.tasks
        ),
    )
    tail = rep.tail
    tail_text = (
        f"<p>Worst {tail['share']:.0%} of conversations by friction ({len(tail['conversations'])}): mean score "
        f"{_e(tail['tail_mean_score'])} against {_e(tail['overall_mean_score'])} overall; they hold "
        f"{rp.fmt_share(tail['tail_share_of_friction'])} of all friction.</p>"
    )
    worst = _table(
        ("worst streams", "calls", "friction rate", "format failure rate"),
        (
            (_e(w["stream"]), w["calls"], _pct(w["friction_rate"]), _pct(w["format_failure_rate"]))
            for w in tail["worst_streams"]
        ),
    )
    note = rp.sampling_note(rep)
    summary = (
        f"<p>{html.escape(rp.headline(rep))}; "
        f"{len(rep.review)} need review; {len(rep.drift)} drift alerts; "
        f"{sum(1 for t in rep.tasks if t['brute_force'])} of {len(rep.tasks)} agent tasks brute-forced.</p>"
        + (f'<p class="note">{html.escape(note)}</p>' if note else "")
    )
    body = "".join(
        (
            f"<h1>{html.escape(title)}</h1>",
            summary,
            _section(rp.SECTION_REVIEW, review),
            _section(rp.SECTION_FRICTION, friction, friction_chart(rep)),
            _section(rp.SECTION_DRIFT, changes, alerts, drift_chart(rep), length_chart(rep)),
            _section(rp.SECTION_TASKS, tasks, trajectory_chart(rep)),
            _section(rp.SECTION_TAIL, tail_text, worst),
            _section(review_quality.SECTION, _quality(rep)),
        )
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{body}</body></html>"
    )


def write_html(rep: rp.Report, out: str | Path) -> Path:
    """Write the report to ``out``; raises :class:`MissingDependency` without matplotlib."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(rep), encoding="utf-8")
    return path


__all__ = ["INSTALL_HINT", "MissingDependency", "render_html", "write_html"]
