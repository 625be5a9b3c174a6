"""``frictionlens report``: what needs a human, read back from the local store or any OTLP-JSON file.

Reads the Collector file exporter's format (what the embedded default writes) and summarises
the signals the pipeline put on the spans: conversations up for review, friction rates per
stream, drift alerts with their suspected cause and before/after values, agent trajectories
against their budgets, and the tail (averages hide a collapse in the worst slice).

A store written with sampling on holds a part of the spans, each marked with the probability
it was kept at (``th`` in the ``ot`` tracestate entry). The report then estimates the whole:
each span counts ``1 / probability`` times (conversation summaries, flagged conversations and
drift alerts are all kept, so they count once). Exact numbers replace estimates where the
store has them: calls from the ``gen_ai.client.operation.duration`` metric (else the call
counts on the summaries of closed conversations), calls per stream from
``frictionlens.output.length`` where its stream names match the spans', friction events by
kind from ``frictionlens.friction.events``. The rest is scaled to the exact call total.
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
from frictionlens.collector.decode import friction_kinds, metric_points, span_dicts
from frictionlens.exporters import review_quality
from frictionlens.exporters.filestore import read_metrics, read_traces
from frictionlens.exporters.sampling import probability, threshold_of
from frictionlens.processors.drift import stage as drift
from frictionlens.processors.friction.kinds import category

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
    """friction events by kind: on calls, feedback and conversation summaries (``silence``)"""
    friction_rate: float | None = None
    """share of LLM calls with friction"""
    conversations: int = 0
    sampling: dict[str, Any] = field(default_factory=dict)
    """empty for a complete store; for a sampled one: ``sample_rates`` (the probabilities
    spans were kept at, below 1), ``spans`` (spans read), ``exact`` (the keys of this
    document counted exactly, not estimated)"""
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


def _call_row(
    s: dict[str, Any], a: dict[str, Any], stream: str, kinds: list[str], weight: float
) -> dict[str, Any]:
    start, end = s.get("start_time_unix_nano"), s.get("end_time_unix_nano")
    latency = (end - start) / 1e9 if start and end and end > start else None
    return {
        "time_unix_nano": start or 0,
        "stream": stream,
        "friction": kinds,
        "weight": weight,
        "features": {f: get(a, latency) for f, get in _FEATURE_VALUE.items()},
    }


def _summary(values: list[tuple[Any, float]]) -> Any:
    """Weighted mean of numbers and flags; the most common value of anything else; None if
    empty. ``values``: (value, weight) pairs."""
    values = [(v, w) for v, w in values if v is not None]
    if not values:
        return None
    if all(isinstance(v, (bool, int, float)) for v, _ in values):
        return round(sum(float(v) * w for v, w in values) / sum(w for _, w in values), 4)
    counts: Counter[Any] = Counter()
    for v, w in values:
        counts[v] += w
    return counts.most_common(1)[0][0]


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
        _summary([(r["features"][feature], r["weight"]) for r in rows if r["time_unix_nano"] < cut])
        if known
        else None
    )
    alert["after"] = (
        _summary(
            [(r["features"][feature], r["weight"]) for r in rows if r["time_unix_nano"] >= cut]
        )
        if known
        else None
    )


def _friction_rates(
    by_stream: dict[str, list[dict[str, Any]]], calls: dict[str, float]
) -> list[dict[str, Any]]:
    """Per stream: calls (``calls``, exact or estimated), calls with friction and their share,
    and the share of calls with each kind and category."""
    rates = []
    for stream, rows in sorted(by_stream.items()):
        kinds: Counter[str] = Counter()
        cats: Counter[str] = Counter()
        for r in rows:
            for k in r["friction"]:
                kinds[k] += r["weight"]
            for c in {category(k) for k in r["friction"]} - {None}:
                cats[c] += r["weight"]
        n = calls[stream]
        with_friction = sum(r["weight"] for r in rows if r["friction"])
        rates.append(
            {
                "stream": stream,
                "calls": round(n),
                "friction_calls": round(with_friction),
                "rate": round(with_friction / n, 4) if n else 0.0,
                "kinds": {k: round(v / n, 4) for k, v in kinds.most_common()} if n else {},
                "categories": {c: round(v / n, 4) for c, v in cats.most_common()} if n else {},
            }
        )
    return rates


def _tail(
    scores: list[tuple[float, str, str]],
    rates: list[dict[str, Any]],
    failures: Counter[str],
    calls: dict[str, float],
) -> dict[str, Any]:
    ranked = sorted(scores, reverse=True)
    k = math.ceil(len(ranked) * TAIL_SHARE) if ranked else 0
    worst = ranked[:k]
    total = sum(s for s, _, _ in ranked)
    fails: Counter[str] = Counter()
    for key, v in failures.items():
        fails[key.rsplit(" ", 1)[0]] += v
    by_rate = sorted(
        rates, key=lambda r: (-r["rate"], -fails[r["stream"]] / max(calls[r["stream"]], 1))
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
                "format_failure_rate": round(fails[r["stream"]] / max(calls[r["stream"]], 1), 4),
            }
            for r in by_rate[:WORST_STREAMS]
        ],
    }


# -- counting a sampled store ------------------------------------------------------------
_DURATION_METRICS = (
    sc.METRIC_GEN_AI_OPERATION_DURATION,
    sc.METRIC_GEN_AI_INFERENCE_OPERATION_DURATION,
)
_ALL = "*"


def metric_total(
    points: Iterable[dict[str, Any]],
    names: Iterable[str],
    since_ns: int | None = None,
    by: str | None = None,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> Counter[str] | None:
    """What a counter added up (or a histogram counted) at or after ``since_ns``, per value of
    attribute ``by`` (one ``*`` total without it), over the points whose attributes pass
    ``where``; None when the store has no point of these metrics. A cumulative series (one
    per process: its start time tells them apart) counts its last value less its last value
    before ``since_ns``."""
    names = set(names)
    latest: dict[tuple[Any, ...], tuple[int, float]] = {}
    before: dict[tuple[Any, ...], tuple[int, float]] = {}
    out: Counter[str] = Counter()
    seen = False
    for p in points:
        if p["name"] not in names or (where is not None and not where(p["attributes"])):
            continue
        seen = True
        attrs = p["attributes"]
        group = str(attrs.get(by)) if by else _ALL
        value = p["count"] if "count" in p else p.get("value") or 0
        t = p["time_unix_nano"]
        after = since_ns is None or t >= since_ns
        if p.get("temporality") == "delta":
            out[group] += value if after else 0
            continue
        series = (
            group,
            p["name"],
            repr(sorted(attrs.items())),
            repr(sorted(p["resource"].items())),
            p["start_time_unix_nano"],
        )
        kept = latest if after else before
        if series not in kept or t >= kept[series][0]:
            kept[series] = (t, value)
    if not seen:
        return None
    for series, (_, value) in latest.items():
        out[series[0]] += value - before.get(series, (0, 0))[1]
    return out


def _calibrate(rows: list[dict[str, Any]], known: dict[str, float]) -> None:
    """Scale the weights of the probability-sampled call rows so that each group whose size is
    known exactly (``known``: group -> calls) adds up to it; rows kept with probability 1 are
    counted as they are. A ratio estimate: the sampled rows stand for the calls the kept ones
    leave over, which the unscaled weights only estimate."""
    ones: Counter[str] = Counter()
    sampled: Counter[str] = Counter()
    for r in rows:
        (sampled if r["weight"] > 1 else ones)[r["group"]] += r["weight"]
    factor = {g: (n - ones[g]) / sampled[g] for g, n in known.items() if sampled[g] and n > ones[g]}
    for r in rows:
        f = factor.get(r["group"])
        if f is not None and r["weight"] > 1:
            r["weight"] *= f


def _sampled_totals(
    rep: Report,
    rows: list[dict[str, Any]],
    points: list[dict[str, Any]],
    since_ns: int | None,
    summarized: dict[str, int],
    rates: set[float],
) -> float:
    """Calibrate ``rows`` of a sampled store to its exact numbers and say which they are;
    returns the number of calls."""
    exact = ["conversations", "review"]  # summaries are always kept
    llm = metric_total(
        points,
        _DURATION_METRICS,
        since_ns,
        where=lambda a: a.get(sc.GEN_AI_OPERATION_NAME) in sc.LLM_OPERATIONS,
    )
    kinds = metric_total(points, (sc.METRIC_FRICTION_EVENTS,), since_ns, by=sc.METRIC_ATTR_KIND)
    if kinds is not None:
        rep.friction = Counter({k: round(v) for k, v in kinds.items() if v})
        exact.append("friction")
    if llm is not None:
        by_stream = metric_total(
            points, (sc.METRIC_OUTPUT_LENGTH,), since_ns, by=sc.METRIC_ATTR_STREAM
        )
        names = {r["stream"] for r in rows}
        matched = {s: n for s, n in (by_stream or {}).items() if s in names}
        for r in rows:
            r["group"] = r["stream"] if r["stream"] in matched else _ALL
        _calibrate(rows, {**matched, _ALL: llm[_ALL] - sum(matched.values())})
        exact += ["calls"] + (["streams"] if matched else [])
        total = llm[_ALL]
    else:
        for r in rows:
            r["group"] = "closed" if r.get("conversation") in summarized else _ALL
        _calibrate(rows, {"closed": sum(summarized.values())})
        total = sum(r["weight"] for r in rows)
    rep.sampling = {"sample_rates": sorted(rates), "exact": exact}
    return total


def build(
    spans: Iterable[dict[str, Any]],
    metrics: Iterable[dict[str, Any]] = (),
    *,
    since_ns: int | None = None,
    series: bool = True,
) -> Report:
    """The report of ``spans`` and metric points ``metrics`` (both at or after ``since_ns``,
    except that cumulative points before it serve as baselines). Metric points are read only
    when needed: for the charts (``series``) or to count a sampled store exactly."""
    rep = Report()
    scores: list[tuple[float, str, str]] = []
    rows: list[dict[str, Any]] = []
    friction: Counter[str] = Counter()
    summarized: dict[str, int] = {}
    rates: set[float] = set()
    spans_read = 0
    sampled = False  # a span says it was sampled (th), even at probability 1
    verdicts = review_quality.Tally()
    spans = verdicts.watch(spans)
    for s in spans:
        spans_read += 1
        a = s["attributes"]
        op = a.get(sc.GEN_AI_OPERATION_NAME)
        th = threshold_of(s.get("trace_state", ""))
        weight = 1.0
        if th is not None:
            sampled = True
            if th:
                rates.add(round(probability(th), 6))
                weight = 1.0 / probability(th)
        kinds = friction_kinds(s)
        if s["name"] == sc.CONVERSATION_SPAN:
            rep.conversations += 1
            key = str(a.get(sc.CONVERSATION_ID))
            summarized[key] = summarized.get(key, 0) + int(a.get(sc.CONVERSATION_CALLS) or 0)
            friction.update(kinds)
            scores.append(
                (
                    float(a.get(sc.FRICTION_SCORE) or 0.0),
                    str(a.get(sc.CONVERSATION_ID)),
                    s["trace_id"],
                )
            )
            if a.get(sc.REVIEW_NEEDED):
                found = {
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
                        "friction": found,
                        "trace_id": s["trace_id"],
                    }
                )
            continue
        if op in sc.LLM_OPERATIONS:
            stream = str(
                a.get(sc.DRIFT_STREAM)
                or f"{a.get(sc.GEN_AI_PROVIDER_NAME)}/{a.get(sc.GEN_AI_REQUEST_MODEL)}"
            )
            row = _call_row(s, a, stream, kinds, weight)
            row["conversation"] = a.get(sc.CONVERSATION_ID)
            if a.get(sc.OUTPUT_FORMAT_VALID) is False:
                row["format_failure"] = f"{stream} {a.get(sc.OUTPUT_FORMAT_ERROR)}"
            rows.append(row)
            for ev in s["events"]:
                ea = ev["attributes"]
                if ev["name"] == sc.DRIFT_EVENT:
                    rep.drift.append(
                        {
                            "stream": ea.get(sc.DRIFT_STREAM),
                            "feature": ea.get(sc.DRIFT_FEATURE),
                            "cause": ea.get(sc.DRIFT_SUSPECTED_CAUSE),
                            "kind": ea.get(sc.DRIFT_KIND),
                            "alert": ea.get(sc.DRIFT_ALERT, True),
                            "value": ea.get(sc.DRIFT_VALUE),
                            "threshold": ea.get(sc.DRIFT_THRESHOLD),
                            "trace_id": s["trace_id"],
                            "time_unix_nano": ev.get("time_unix_nano"),
                        }
                    )
        else:
            for k in kinds:
                friction[k] += weight
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
    points = list(metrics) if sampled or series else []
    total = (
        _sampled_totals(rep, rows, points, since_ns, summarized, rates)
        if sampled
        else float(len(rows))
    )
    calls: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        w = r["weight"]
        calls[r["stream"]] += w
        if "format_failure" in r:
            failures[r["format_failure"]] += w
        for k in r["friction"]:
            friction[k] += w
        by_stream[r["stream"]].append(r)
    if sampled:
        rep.sampling["spans"] = spans_read
    if "friction" not in rep.sampling.get("exact", ()):
        rep.friction = Counter({k: round(v) for k, v in friction.items() if round(v)})
    rep.calls = round(total)
    rep.streams = Counter({k: round(v) for k, v in calls.items()})
    rep.format_failures = Counter({k: round(v) for k, v in failures.items() if round(v)})
    with_friction = sum(r["weight"] for r in rows if r["friction"])
    rep.friction_rate = round(with_friction / total, 4) if total else None
    for group in by_stream.values():
        group.sort(key=lambda r: r["time_unix_nano"])
    rep.call_log = sorted(rows, key=lambda r: r["time_unix_nano"])
    rep.provider_changes = _provider_changes(by_stream)
    rep.drift.sort(key=lambda d: d.get("time_unix_nano") or 0)
    for d in rep.drift:
        _before_after(d, by_stream.get(d["stream"], []), rep.provider_changes)
    rep.tasks.sort(key=lambda t: t.get("time_unix_nano") or 0)
    rep.friction_rates = _friction_rates(by_stream, calls)
    rep.tail = _tail(scores, rep.friction_rates, failures, calls)
    rep.drift_scores = [
        {
            "time_unix_nano": p["time_unix_nano"],
            "stream": p["attributes"].get(sc.METRIC_ATTR_STREAM),
            "feature": p["attributes"].get(sc.METRIC_ATTR_FEATURE),
            "value": p.get("value"),
        }
        for p in points
        if p["name"] == sc.METRIC_DRIFT_SCORE
        and (since_ns is None or p["time_unix_nano"] >= since_ns)
    ]
    rep.review_quality = verdicts.result()
    return rep


def load(path: str | Path, since_ns: int | None = None, *, metrics: bool = True) -> Report:
    """The report of a data dir or an OTLP-JSON file, over spans starting (and metric points
    taken) at or after ``since_ns`` when given. Parsing metric points is slow: only the HTML
    charts and the counts of a sampled store read them, and ``metrics=False`` says the charts
    are not wanted."""
    spans = (
        s
        for req in read_traces(path)
        for s in span_dicts(req)
        if since_ns is None or (s["start_time_unix_nano"] or 0) >= since_ns
    )
    points = (p for req in read_metrics(path) for p in metric_points(req))
    return build(spans, points, since_ns=since_ns, series=metrics)


def fmt_value(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


def fmt_share(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def headline(rep: Report) -> str:
    """The first line: calls, streams, conversations and the friction rate."""
    friction = (
        "" if rep.friction_rate is None else f"; friction on {rep.friction_rate:.1%} of calls"
    )
    return (
        f"{'about ' if rep.sampling else ''}{rep.calls} LLM calls in {len(rep.streams)} stream(s);"
        f" {rep.conversations} conversations closed{friction}"
    )


def sampling_note(rep: Report) -> str | None:
    """What the numbers of a sampled store are: estimates, from which rates, and what is exact."""
    if not rep.sampling:
        return None
    rates = ", ".join(f"{r:.4g}" for r in rep.sampling["sample_rates"]) or "0"
    return (
        f"Estimates from a sampled store: {rep.sampling['spans']} spans, kept at sampling rate "
        f"{rates} (flagged conversations, drift alerts and summaries whole), each counting "
        f"1/rate. Exact: {', '.join(rep.sampling['exact'])}."
    )


def render(rep: Report) -> str:
    lines = [headline(rep)]
    note = sampling_note(rep)
    if note:
        lines.append(note)
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
            f"  {d['stream']}  {d['feature']}  {d['kind'] or 'content'}"
            f"{'' if d['alert'] else ' (same alert)'}  cause={d['cause']}"
            f"  value {d['value']:.3g} > {d['threshold']:.3g}"
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
