"""``frictionlens report``: what needs a human, read back from the local store or any OTLP-JSON file.

Reads the Collector file exporter's format (what the embedded default writes) and summarises
the signals the pipeline put on the spans: conversations up for review, friction by kind,
drift alerts with their suspected cause, and agent trajectories against their budgets.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from frictionlens import semconv as sc
from frictionlens.collector.decode import span_dicts
from frictionlens.exporters.filestore import read_traces


@dataclass
class Report:
    calls: int = 0
    streams: Counter[str] = field(default_factory=Counter)
    format_failures: Counter[str] = field(default_factory=Counter)
    friction: Counter[str] = field(default_factory=Counter)
    conversations: int = 0
    review: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: counters as plain objects, lists of rows as below."""
        return {f.name: dict(v) if isinstance(v, Counter) else v for f in fields(self) for v in [getattr(self, f.name)]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def build(spans: Iterable[dict[str, Any]]) -> Report:
    rep = Report()
    for s in spans:
        a = s["attributes"]
        op = a.get(sc.GEN_AI_OPERATION_NAME)
        if s["name"] == sc.CONVERSATION_SPAN:
            rep.conversations += 1
            if a.get(sc.REVIEW_NEEDED):
                kinds = {k[len(sc.CONVERSATION_FRICTION_PREFIX):]: v for k, v in a.items()
                         if k.startswith(sc.CONVERSATION_FRICTION_PREFIX)}
                rep.review.append({"conversation": a.get(sc.CONVERSATION_ID), "reason": a.get(sc.REVIEW_REASON),
                                   "turns": a.get(sc.CONVERSATION_TURNS), "score": a.get(sc.FRICTION_SCORE),
                                   "friction": kinds, "trace_id": s["trace_id"]})
            continue
        if op in sc.LLM_OPERATIONS:
            rep.calls += 1
            stream = f"{a.get(sc.GEN_AI_PROVIDER_NAME)}/{a.get(sc.GEN_AI_REQUEST_MODEL)}"
            rep.streams[stream] += 1
            if a.get(sc.OUTPUT_FORMAT_VALID) is False:
                rep.format_failures[f"{stream} {a.get(sc.OUTPUT_FORMAT_ERROR)}"] += 1
            for ev in s["events"]:
                ea = ev["attributes"]
                if ev["name"] == sc.GEN_AI_EVALUATION_RESULT and ea.get(sc.GEN_AI_EVALUATION_NAME) == sc.EVALUATION_FRICTION:
                    rep.friction[str(ea.get(sc.GEN_AI_EVALUATION_SCORE_LABEL))] += 1
                elif ev["name"] == sc.DRIFT_EVENT:
                    rep.drift.append({"stream": ea.get(sc.DRIFT_STREAM), "feature": ea.get(sc.DRIFT_FEATURE),
                                      "cause": ea.get(sc.DRIFT_SUSPECTED_CAUSE), "value": ea.get(sc.DRIFT_VALUE),
                                      "threshold": ea.get(sc.DRIFT_THRESHOLD), "trace_id": s["trace_id"],
                                      "time_unix_nano": ev.get("time_unix_nano")})
        if sc.TRAJECTORY_STEPS in a:
            rep.tasks.append({"task": a.get(sc.GEN_AI_AGENT_NAME) or s["name"], "steps": a.get(sc.TRAJECTORY_STEPS),
                              "expected": a.get(sc.TRAJECTORY_EXPECTED_STEPS), "tool_calls": a.get(sc.TRAJECTORY_TOOL_CALLS),
                              "efficiency": a.get(sc.TRAJECTORY_EFFICIENCY), "outcome": a.get(sc.TRAJECTORY_OUTCOME),
                              "brute_force": a.get(sc.TRAJECTORY_BRUTE_FORCE), "trace_id": s["trace_id"]})
    rep.drift.sort(key=lambda d: d.get("time_unix_nano") or 0)
    return rep


def load(path: str | Path) -> Report:
    return build(s for req in read_traces(path) for s in span_dicts(req))


def render(rep: Report) -> str:
    lines = [f"{rep.calls} LLM calls in {len(rep.streams)} stream(s); {rep.conversations} conversations closed"]
    lines.append(f"\nConversations needing review: {len(rep.review)}")
    for r in sorted(rep.review, key=lambda r: -(r["score"] or 0)):
        kinds = ", ".join(f"{k}×{v}" for k, v in r["friction"].items() if v)
        lines.append(f"  {r['conversation']}  score {r['score']:.2f}  turns {r['turns']}  [{kinds}]  trace {r['trace_id']}")
    lines.append("\nFriction by kind: " + (", ".join(f"{k} {v}" for k, v in rep.friction.most_common()) or "none"))
    lines.append("Format failures: " + (", ".join(f"{k} {v}" for k, v in rep.format_failures.most_common()) or "none"))
    lines.append(f"\nDrift alerts: {len(rep.drift)}")
    for d in rep.drift:
        lines.append(f"  {d['stream']}  {d['feature']}  cause={d['cause']}  value {d['value']:.3g} > {d['threshold']:.3g}")
    lines.append(f"\nAgent tasks: {len(rep.tasks)}")
    for t in rep.tasks:
        eff = t["efficiency"]
        lines.append(f"  {t['task']}  steps {t['steps']}/{t['expected']}  tools {t['tool_calls']}  "
                     f"efficiency {eff if eff is None else round(eff, 2)}  {t['outcome']}"
                     + ("  BRUTE FORCE" if t["brute_force"] else ""))
    return "\n".join(lines)
