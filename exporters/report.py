"""``frictionlens report``: what needs a human, read back from the local store or any OTLP-JSON file.

Reads the Collector file exporter's format (what the embedded default writes) and summarises
the signals the pipeline put on the spans: conversations up for review, friction rates per
stream, drift alerts with their suspected cause and before/after values, agent trajectories
against their budgets, and the tail (averages hide a collapse in the worst slice).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from statistics import fmean
from typing import Any

from frictionlens import semconv as sc
from frictionlens.collector.decode import metric_points, span_dicts
from frictionlens.exporters import review_quality
from frictionlens.exporters.filestore import read_metrics, read_traces
from frictionlens.processors.drift import stage as drift
from frictionlens.processors.friction.kinds import CATEGORY

#: section titles, shared by the terminal and the HTML report
SECTION_REVIEW = "Conversations needing review"
SECTION_FRICTION = "Friction rates by stream"
SECTION_DRIFT = "Drift alerts"
SECTION_TASKS = "Agent tasks"
SECTION_TAIL = "Tail slices"
SECTIONS = (
    SECTION_REVIEW,
    SECTION_FRICTION,
    SECTION_DRIFT,
    SECTION_TASKS,
    SECTION_TAIL,
    review_quality.SECTION,
)

#: share of conversations in the worst-by-friction tail slice
TAIL_SHARE = 0.05
WORST_STREAMS = 3

# drift feature -> its value on one call (the span's attributes, its latency in seconds),
# for the before/after columns; features computed only inside the stage are left out
_FEATURE_VALUE: dict[str, Callable[[dict[str, Any], float | None], Any]] = {
    drift.FORMAT_INVALID: lambda a, _: (
        None if a.get(sc.OUTPUT_FORMAT_VALID) is None else not a[sc.OUTPUT_FORMAT_VALID]
    ),
    drift.PREAMBLE: lambda a, _: a.get(sc.OUTPUT_PREAMBLE),
    drift.CODE_FENCE: lambda a, _: a.get(sc.OUTPUT_CODE_FENCE),
    drift.REFUSAL: lambda a, _: a.get(sc.OUTPUT_REFUSAL),
    drift.TRUNCATED: lambda a, _: a.get(sc.OUTPUT_TRUNCATED),
    drift.OUTPUT_CHARS: lambda a, _: a.get(sc.OUTPUT_CHARS),
    drift.OUTPUT_TOKENS: lambda a, _: a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    drift.LATENCY: lambda _, latency: latency,
    drift.RESPONSE_MODEL: lambda a, _: a.get(sc.GEN_AI_RESPONSE_MODEL),
    drift.SYSTEM_FINGERPRINT: lambda a, _: a.get(sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT),
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> int:
    """``--since`` as Unix nanoseconds: an ISO-8601 time (UTC unless it names an offset) or a
    duration back from now: a number and one of ``s m h d w`` (``30m``, ``2h``, ``1.5d``)."""
    m = _DURATION.match(text)
    if m:
        now = now or datetime.now(timezone.utc)
        return int((now.timestamp() - float(m.group(1)) * _UNIT_S[m.group(2)]) * 1e9)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected an ISO-8601 time (2026-11-26T14:00:00Z) "
            "or a duration such as 30m, 2h, 1d"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


@dataclass
class Report:
    calls: int = 0
    streams: Counter[str] = field(default_factory=Counter)
    format_failures: Counter[str] = field(default_factory=Counter)
    friction: Counter[str] = field(default_factory=Counter)
    conversations: int = 0
    review: list[dict[str, Any]] = field(default_factory=list)
    friction_rates: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    provider_changes: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    tail: dict[str, Any] = field(default_factory=dict)
    review_quality: dict[str, Any] = field(default_factory=dict)
    """precision and recall measured from reviewers' verdicts (exporters/review_quality.py)"""
    # per-call and per-point series behind the HTML charts; not part of the --json document
    call_log: list[dict[str, Any]] = field(default_factory=list, metadata={"series": True})
    drift_scores: list[dict[str, Any]] = field(default_factory=list, metadata={"series": True})

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: counters as plain objects, lists of rows as below."""
        return {
            f.name: dict(v) if isinstance(v, Counter) else v
            for f in fields(self)
            if not f.metadata.get("series")
            for v in [getattr(self, f.name)]
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def _call_row(s: dict[str, Any], a: dict[str, Any], stream: str) -> dict[str, Any]:
    start, end = s.get("start_time_unix_nano"), s.get("end_time_unix_nano")
    latency = (end - start) / 1e9 if start and end and end > start else None
    kinds = [
        str(ev["attributes"].get(sc.GEN_AI_EVALUATION_SCORE_LABEL))
        for ev in s["events"]
        if ev["name"] == sc.GEN_AI_EVALUATION_RESULT
        and ev["attributes"].get(sc.GEN_AI_EVALUATION_NAME) == sc.EVALUATION_FRICTION
    ]
    return {
        "time_unix_nano": start or 0,
        "stream": stream,
        "friction": kinds,
        "features": {f: get(a, latency) for f, get in _FEATURE_VALUE.items()},
    }


def _summary(values: list[Any]) -> Any:
    """Mean of numbers and flags; the most common value of anything else; None if empty."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    if all(isinstance(v, (bool, int, float)) for v in values):
        return round(fmean(float(v) for v in values), 4)
    return Counter(values).most_common(1)[0][0]


def _provider_changes(by_stream: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The first call of each stream whose response model or fingerprint differs from the call before."""
    changes = []
    for stream, rows in by_stream.items():
        for prev, row in zip(rows, rows[1:]):
            p, r = prev["features"], row["features"]
            diff = [
                (f, p[f], r[f])
                for f in (drift.RESPONSE_MODEL, drift.SYSTEM_FINGERPRINT)
                if p[f] is not None and r[f] is not None and p[f] != r[f]
            ]
            if diff:
                changes.append(
                    {
                        "stream": stream,
                        "time_unix_nano": row["time_unix_nano"],
                        "changed": {f: {"before": b, "after": x} for f, b, x in diff},
                    }
                )
    return changes


def _before_after(
    alert: dict[str, Any], rows: list[dict[str, Any]], changes: list[dict[str, Any]]
) -> None:
    """Split the stream's calls at the provider change the alert is put down to, else at the alert."""
    cut = alert.get("time_unix_nano") or 0
    if alert.get("cause") == sc.DRIFT_CAUSE_PROVIDER_CHANGE:
        cut = next(
            (
                c["time_unix_nano"]
                for c in reversed(changes)
                if c["stream"] == alert["stream"] and c["time_unix_nano"] <= cut
            ),
            cut,
        )
    feature = alert.get("feature")
    known = feature in _FEATURE_VALUE
    alert["before"] = (
        _summary([r["features"][feature] for r in rows if r["time_unix_nano"] < cut])
        if known
        else None
    )
    alert["after"] = (
        _summary([r["features"][feature] for r in rows if r["time_unix_nano"] >= cut])
        if known
        else None
    )


def _friction_rates(by_stream: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rates = []
    for stream, rows in sorted(by_stream.items()):
        kinds = Counter(k for r in rows for k in r["friction"])
        cats = Counter(CATEGORY[k] for r in rows for k in set(r["friction"]) if k in CATEGORY)
        n = len(rows)
        rates.append(
            {
                "stream": stream,
                "calls": n,
                "friction_calls": sum(1 for r in rows if r["friction"]),
                "rate": round(sum(1 for r in rows if r["friction"]) / n, 4),
                "kinds": {k: round(v / n, 4) for k, v in kinds.most_common()},
                "categories": {c: round(v / n, 4) for c, v in cats.most_common()},
            }
        )
    return rates


def _tail(
    scores: list[tuple[float, str, str]],
    rates: list[dict[str, Any]],
    failures: Counter[str],
    streams: Counter[str],
) -> dict[str, Any]:
    ranked = sorted(scores, reverse=True)
    k = math.ceil(len(ranked) * TAIL_SHARE) if ranked else 0
    worst = ranked[:k]
    total = sum(s for s, _, _ in ranked)
    fails: Counter[str] = Counter()
    for key, v in failures.items():
        fails[key.rsplit(" ", 1)[0]] += v
    by_rate = sorted(
        rates, key=lambda r: (-r["rate"], -fails[r["stream"]] / max(streams[r["stream"]], 1))
    )
    return {
        "share": TAIL_SHARE,
        "conversations": [{"conversation": c, "score": s, "trace_id": t} for s, c, t in worst],
        "tail_mean_score": round(fmean(s for s, _, _ in worst), 4) if worst else None,
        "overall_mean_score": round(total / len(ranked), 4) if ranked else None,
        "tail_share_of_friction": round(sum(s for s, _, _ in worst) / total, 4) if total else None,
        "worst_streams": [
            {
                "stream": r["stream"],
                "calls": r["calls"],
                "friction_rate": r["rate"],
                "format_failure_rate": round(fails[r["stream"]] / max(r["calls"], 1), 4),
            }
            for r in by_rate[:WORST_STREAMS]
        ],
    }


def build(spans: Iterable[dict[str, Any]], metrics: Iterable[dict[str, Any]] = ()) -> Report:
    rep = Report()
    scores: list[tuple[float, str, str]] = []
    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    verdicts = review_quality.Tally()
    spans = verdicts.watch(spans)
    for s in spans:
        a = s["attributes"]
        op = a.get(sc.GEN_AI_OPERATION_NAME)
        if s["name"] == sc.CONVERSATION_SPAN:
            rep.conversations += 1
            scores.append(
                (
                    float(a.get(sc.FRICTION_SCORE) or 0.0),
                    str(a.get(sc.CONVERSATION_ID)),
                    s["trace_id"],
                )
            )
            if a.get(sc.REVIEW_NEEDED):
                kinds = {
                    k[len(sc.CONVERSATION_FRICTION_PREFIX) :]: v
                    for k, v in a.items()
                    if k.startswith(sc.CONVERSATION_FRICTION_PREFIX)
                }
                rep.review.append(
                    {
                        "conversation": a.get(sc.CONVERSATION_ID),
                        "reason": a.get(sc.REVIEW_REASON),
                        "turns": a.get(sc.CONVERSATION_TURNS),
                        "score": a.get(sc.FRICTION_SCORE),
                        "friction": kinds,
                        "trace_id": s["trace_id"],
                    }
                )
            continue
        if op in sc.LLM_OPERATIONS:
            rep.calls += 1
            stream = str(
                a.get(sc.DRIFT_STREAM)
                or f"{a.get(sc.GEN_AI_PROVIDER_NAME)}/{a.get(sc.GEN_AI_REQUEST_MODEL)}"
            )
            rep.streams[stream] += 1
            if a.get(sc.OUTPUT_FORMAT_VALID) is False:
                rep.format_failures[f"{stream} {a.get(sc.OUTPUT_FORMAT_ERROR)}"] += 1
            row = _call_row(s, a, stream)
            by_stream[stream].append(row)
            rep.friction.update(row["friction"])
            for ev in s["events"]:
                ea = ev["attributes"]
                if ev["name"] == sc.DRIFT_EVENT:
                    rep.drift.append(
                        {
                            "stream": ea.get(sc.DRIFT_STREAM),
                            "feature": ea.get(sc.DRIFT_FEATURE),
                            "cause": ea.get(sc.DRIFT_SUSPECTED_CAUSE),
                            "value": ea.get(sc.DRIFT_VALUE),
                            "threshold": ea.get(sc.DRIFT_THRESHOLD),
                            "trace_id": s["trace_id"],
                            "time_unix_nano": ev.get("time_unix_nano"),
                        }
                    )
        if sc.TRAJECTORY_STEPS in a:
            rep.tasks.append(
                {
                    "task": a.get(sc.GEN_AI_AGENT_NAME) or s["name"],
                    "steps": a.get(sc.TRAJECTORY_STEPS),
                    "expected": a.get(sc.TRAJECTORY_EXPECTED_STEPS),
                    "tool_calls": a.get(sc.TRAJECTORY_TOOL_CALLS),
                    "efficiency": a.get(sc.TRAJECTORY_EFFICIENCY),
                    "outcome": a.get(sc.TRAJECTORY_OUTCOME),
                    "brute_force": a.get(sc.TRAJECTORY_BRUTE_FORCE),
                    "trace_id": s["trace_id"],
                    "time_unix_nano": s.get("start_time_unix_nano"),
                }
            )
    for rows in by_stream.values():
        rows.sort(key=lambda r: r["time_unix_nano"])
    rep.call_log = sorted(
        (r for rows in by_stream.values() for r in rows), key=lambda r: r["time_unix_nano"]
    )
    rep.provider_changes = _provider_changes(by_stream)
    rep.drift.sort(key=lambda d: d.get("time_unix_nano") or 0)
    for d in rep.drift:
        _before_after(d, by_stream.get(d["stream"], []), rep.provider_changes)
    rep.tasks.sort(key=lambda t: t.get("time_unix_nano") or 0)
    rep.friction_rates = _friction_rates(by_stream)
    rep.tail = _tail(scores, rep.friction_rates, rep.format_failures, rep.streams)
    rep.drift_scores = [
        {
            "time_unix_nano": p["time_unix_nano"],
            "stream": p["attributes"].get(sc.METRIC_ATTR_STREAM),
            "feature": p["attributes"].get(sc.METRIC_ATTR_FEATURE),
            "value": p.get("value"),
        }
        for p in metrics
        if p["name"] == sc.METRIC_DRIFT_SCORE
    ]
    rep.review_quality = verdicts.result()
    return rep


def load(path: str | Path, since_ns: int | None = None, *, metrics: bool = True) -> Report:
    """The report of a data dir or an OTLP-JSON file, over spans starting (and metric points
    taken) at or after ``since_ns`` when given. Only the HTML charts use metric points and
    parsing them is slow: ``metrics=False`` skips them."""

    def after(t: int | None) -> bool:
        return since_ns is None or (t or 0) >= since_ns

    spans = (
        s for req in read_traces(path) for s in span_dicts(req) if after(s["start_time_unix_nano"])
    )
    points = (
        (p for req in read_metrics(path) for p in metric_points(req) if after(p["time_unix_nano"]))
        if metrics
        else ()
    )
    return build(spans, points)


def fmt_value(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


def fmt_share(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def render(rep: Report) -> str:
    lines = [
        f"{rep.calls} LLM calls in {len(rep.streams)} stream(s); {rep.conversations} conversations closed"
    ]
    lines.append(f"\n{SECTION_REVIEW}: {len(rep.review)}")
    for r in sorted(rep.review, key=lambda r: -(r["score"] or 0)):
        kinds = ", ".join(f"{k}×{v}" for k, v in r["friction"].items() if v)
        lines.append(
            f"  {r['conversation']}  score {r['score']:.2f}  turns {r['turns']}  [{kinds}]  trace {r['trace_id']}"
        )
    lines.append(
        "\nFriction by kind: "
        + (", ".join(f"{k} {v}" for k, v in rep.friction.most_common()) or "none")
    )
    lines.append(
        "Format failures: "
        + (", ".join(f"{k} {v}" for k, v in rep.format_failures.most_common()) or "none")
    )
    lines.append(f"\n{SECTION_FRICTION}:")
    for r in rep.friction_rates:
        cats = ", ".join(f"{c} {v:.1%}" for c, v in r["categories"].items()) or "none"
        lines.append(f"  {r['stream']}  {r['calls']} calls  friction {r['rate']:.1%}  [{cats}]")
    lines.append(f"\n{SECTION_DRIFT}: {len(rep.drift)}")
    for d in rep.drift:
        lines.append(
            f"  {d['stream']}  {d['feature']}  cause={d['cause']}  value {d['value']:.3g} > {d['threshold']:.3g}"
            f"  before {fmt_value(d['before'])}  after {fmt_value(d['after'])}"
        )
    lines.append(f"\n{SECTION_TASKS}: {len(rep.tasks)}")
    for t in rep.tasks:
        eff = t["efficiency"]
        lines.append(
            f"  {t['task']}  steps {t['steps']}/{t['expected']}  tools {t['tool_calls']}  "
            f"efficiency {eff if eff is None else round(eff, 2)}  {t['outcome']}"
            + ("  BRUTE FORCE" if t["brute_force"] else "")
        )
    tail = rep.tail
    lines.append(
        f"\n{SECTION_TAIL}: worst {tail['share']:.0%} of conversations by friction "
        f"({len(tail['conversations'])}): mean score {fmt_value(tail['tail_mean_score'])} vs "
        f"{fmt_value(tail['overall_mean_score'])} overall, {fmt_share(tail['tail_share_of_friction'])} of all friction"
    )
    for w in tail["worst_streams"]:
        lines.append(
            f"  {w['stream']}  friction {w['friction_rate']:.1%}  format failures {w['format_failure_rate']:.1%}"
            f"  ({w['calls']} calls)"
        )
    lines += review_quality.render(rep.review_quality)
    return "\n".join(lines)
