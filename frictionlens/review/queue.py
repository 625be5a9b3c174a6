"""The review queue, read back from a store: flagged conversations and a blind random sample.

Every closed conversation has a summary span (``frictionlens.conversation``). The queue holds
all the flagged ones (``frictionlens.review.needed``), by friction score, and each unflagged
one with probability ``sample_rate``, decided by a hash of its summary span's id: the same
conversations stay in the sample however the store grows, and each sampled one stands for
``1 / sample_rate`` unflagged conversations when misses are counted. Sampled items sit at
random positions among the flagged ones, so the queue's order does not give them away.

The store is read twice when the queue is built: the summaries first (small), then the spans
of the queued conversations only. After that only appended lines are read: verdicts are
indexed as they come, and newly closed conversations rebuild the queue (at most every
``REBUILD_S`` seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frictionlens import semconv as sc
from frictionlens.collector.decode import friction_kinds, span_dicts
from frictionlens.exporters.filestore import read_traces_from, traces_file
from frictionlens.review.verdicts import Latest, Verdict, finding_key, from_span, latest

#: share of unflagged conversations drawn into the queue by default
DEFAULT_SAMPLE_RATE = 0.02
#: a store that keeps growing rebuilds the queue at most this often
REBUILD_S = 30.0


@dataclass
class Finding:
    """A friction finding: one kind on one span of the conversation."""

    trace_id: str
    span_id: str
    kind: str
    turn: int | None

    @property
    def key(self) -> str:
        return finding_key(self.span_id, self.kind)


@dataclass
class Step:
    """One LLM call (or piece of app feedback) of a conversation, as the review page shows it."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    turn: int | None
    facts: list[str]
    """what a reviewer may see before their verdict: output size, format, refusal, errors..."""
    findings: list[str]
    drift: list[dict[str, Any]]
    user_text: str | None = None
    output_text: str | None = None


@dataclass
class Item:
    """A conversation in the queue, keyed by its summary span's id."""

    key: str
    trace_id: str
    conversation_id: str
    flagged: bool
    score: float
    reason: str | None
    outcome: str | None
    turns: int
    calls: int
    start_ns: int
    end_ns: int
    source: str
    probability: float
    position: float
    steps: list[Step] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def verdict(self, reviewer: str, **given: Any) -> Verdict:
        """A verdict of ``reviewer`` on this conversation (``needed``, ``note``, ``findings``)."""
        return Verdict(
            conversation_id=self.conversation_id,
            trace_id=self.trace_id,
            span_id=self.key,
            reviewer=reviewer,
            source=self.source,
            sample_probability=self.probability,
            **given,
        )

    @property
    def content(self) -> bool:
        """Whether the app captured message text for any of its calls."""
        return any(s.user_text is not None or s.output_text is not None for s in self.steps)


@dataclass
class Queue:
    items: list[Item]
    flagged: int
    """flagged conversations in the store"""
    unflagged: int
    sample_rate: float

    def __post_init__(self) -> None:
        self.by_key = {i.key: i for i in self.items}


def _unit(*parts: str) -> float:
    """A number in [0, 1) fixed by ``parts``: the same for the same conversation on every read."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_sample(span_id: str, rate: float) -> bool:
    """Whether an unflagged conversation (its summary span's id) is in the random sample."""
    return _unit("sample", span_id) < rate


def _item(s: dict[str, Any], rate: float) -> Item | None:
    a = s["attributes"]
    flagged = a.get(sc.REVIEW_NEEDED) is True
    if not flagged and not in_sample(s["span_id"], rate):
        return None
    return Item(
        key=s["span_id"],
        trace_id=s["trace_id"],
        conversation_id=str(a.get(sc.CONVERSATION_ID, "")),
        flagged=flagged,
        score=float(a.get(sc.FRICTION_SCORE) or 0.0),
        reason=a.get(sc.REVIEW_REASON),
        outcome=a.get(sc.CONVERSATION_OUTCOME),
        turns=int(a.get(sc.CONVERSATION_TURNS) or 0),
        calls=int(a.get(sc.CONVERSATION_CALLS) or 0),
        start_ns=s["start_time_unix_nano"] or 0,
        end_ns=s["end_time_unix_nano"] or 0,
        source=sc.REVIEW_SOURCE_FLAGGED if flagged else sc.REVIEW_SOURCE_SAMPLE,
        probability=1.0 if flagged else rate,
        position=_unit("position", s["span_id"]),
        findings=[Finding(s["trace_id"], s["span_id"], kind, None) for kind in friction_kinds(s)],
    )


def _texts(a: dict[str, Any]) -> tuple[str | None, str | None]:
    """The last user message and the answer, when the app captured content."""

    def parts(raw: Any) -> list[dict[str, Any]] | None:
        try:
            value = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return None
        return value if isinstance(value, list) else None

    def text(message: dict[str, Any]) -> str:
        out = []
        for p in message.get("parts") or ():
            if p.get("type") == "text":
                out.append(str(p.get("content", "")))
            elif p.get("type") == "tool_call":
                out.append(f"[tool call {p.get('name')}({p.get('arguments', '')})]")
        return "\n".join(out)

    inputs, outputs = (
        parts(a.get(sc.GEN_AI_INPUT_MESSAGES)),
        parts(a.get(sc.GEN_AI_OUTPUT_MESSAGES)),
    )
    user = next(
        (
            text(m)
            for m in reversed(inputs or [])
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        None,
    )
    answer = "\n".join(text(m) for m in outputs if isinstance(m, dict)) if outputs else None
    return user, answer


def _facts(s: dict[str, Any]) -> list[str]:
    """What the instrumentation observed on a call, short, without any friction verdict."""
    a = s["attributes"]
    facts = []
    if s["name"] == sc.FEEDBACK_SPAN:
        value = a.get(sc.FEEDBACK_VALUE)
        return [f"feedback: {a.get(sc.FEEDBACK_KIND)}" + ("" if value is None else f" {value:g}")]
    model = a.get(sc.GEN_AI_RESPONSE_MODEL) or a.get(sc.GEN_AI_REQUEST_MODEL)
    if model:
        facts.append(str(model))
    if a.get(sc.OUTPUT_CHARS) is not None:
        facts.append(f"{a[sc.OUTPUT_CHARS]} chars out")
    start, end = s["start_time_unix_nano"], s["end_time_unix_nano"]
    if start and end and end > start:
        seconds = (end - start) / 1e9
        facts.append(f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s")
    reasons = a.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    if reasons:
        facts.append("finish: " + ", ".join(map(str, reasons)))
    expected = a.get(sc.OUTPUT_FORMAT_EXPECTED)
    if a.get(sc.OUTPUT_FORMAT_VALID) is False:
        facts.append(f"{expected} invalid: {a.get(sc.OUTPUT_FORMAT_ERROR)}")
    elif expected and expected != sc.FORMAT_TEXT:
        facts.append(f"{expected} valid")
    for key, label in (
        (sc.OUTPUT_PREAMBLE, "preamble"),
        (sc.OUTPUT_REFUSAL, "refusal"),
        (sc.OUTPUT_TRUNCATED, "truncated"),
        (sc.STREAM_ABANDONED, "stream closed early"),
    ):
        if a.get(key) is True:
            facts.append(label)
    if a.get(sc.RETRY_COUNT):
        facts.append(f"{a[sc.RETRY_COUNT]} HTTP retries")
    if a.get(sc.ERROR_TYPE):
        facts.append(f"error: {a[sc.ERROR_TYPE]}")
    return facts


def _step(s: dict[str, Any]) -> Step:
    a = s["attributes"]
    user, answer = _texts(a)
    turn = a.get(sc.CONVERSATION_TURN)
    return Step(
        trace_id=s["trace_id"],
        span_id=s["span_id"],
        name=s["name"],
        start_ns=s["start_time_unix_nano"] or 0,
        end_ns=s["end_time_unix_nano"] or 0,
        turn=int(turn) if turn is not None else None,
        facts=_facts(s),
        findings=friction_kinds(s),
        drift=[
            {
                "feature": ev["attributes"].get(sc.DRIFT_FEATURE),
                "cause": ev["attributes"].get(sc.DRIFT_SUSPECTED_CAUSE),
                "value": ev["attributes"].get(sc.DRIFT_VALUE),
                "threshold": ev["attributes"].get(sc.DRIFT_THRESHOLD),
            }
            for ev in s["events"]
            if ev["name"] == sc.DRIFT_EVENT
        ],
        user_text=user,
        output_text=answer,
    )


def _task(s: dict[str, Any]) -> dict[str, Any]:
    a = s["attributes"]
    return {
        "trace_id": s["trace_id"],
        "task": a.get(sc.TRAJECTORY_TASK) or a.get(sc.GEN_AI_AGENT_NAME) or s["name"],
        "steps": a.get(sc.TRAJECTORY_STEPS),
        "expected": a.get(sc.TRAJECTORY_EXPECTED_STEPS),
        "tool_calls": a.get(sc.TRAJECTORY_TOOL_CALLS),
        "tool_errors": a.get(sc.TRAJECTORY_TOOL_ERRORS),
        "redundant": a.get(sc.TRAJECTORY_REDUNDANT_CALLS),
        "efficiency": a.get(sc.TRAJECTORY_EFFICIENCY),
        "outcome": a.get(sc.TRAJECTORY_OUTCOME),
        "brute_force": a.get(sc.TRAJECTORY_BRUTE_FORCE),
    }


class _Tail:
    """The spans of a store's traces file past ``offset``, which advances as they are read."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset

    def spans(self, until: int | None = None) -> Iterator[dict[str, Any]]:
        for request, end in read_traces_from(self.path, self.offset):
            if until is not None and end > until:
                return
            self.offset = end
            yield from span_dicts(request)


def _order(items: list[Item]) -> list[Item]:
    """Flagged by score (highest first), each sampled item at a random position among them."""
    flagged = sorted((i for i in items if i.flagged), key=lambda i: (-i.score, i.start_ns))
    for rank, item in enumerate(flagged):
        item.position = (rank + 0.5) / len(flagged)
    return sorted(items, key=lambda i: i.position)


def build(path: str | os.PathLike[str], sample_rate: float) -> tuple[Queue, list[Verdict], int]:
    """The queue of a store, every verdict in it, and the offset it was read up to."""
    items: list[Item] = []
    verdicts: list[Verdict] = []
    counts = {True: 0, False: 0}
    summaries = _Tail(Path(path))
    for s in summaries.spans():
        if s["name"] == sc.CONVERSATION_SPAN:
            counts[s["attributes"].get(sc.REVIEW_NEEDED) is True] += 1
            item = _item(s, sample_rate)
            if item is not None:
                items.append(item)
        elif s["name"] == sc.REVIEW_SPAN:
            v = from_span(s)
            if v is not None:
                verdicts.append(v)
    by_conversation: dict[str, list[Item]] = {}
    for item in items:
        by_conversation.setdefault(item.conversation_id, []).append(item)
    traces: dict[str, Item] = {}
    for s in _Tail(Path(path)).spans(until=summaries.offset):
        a = s["attributes"]
        if sc.TRAJECTORY_STEPS in a:
            owner = traces.get(s["trace_id"])
            if owner is not None:
                owner.tasks.append(_task(s))
            continue
        cid = a.get(sc.CONVERSATION_ID)
        if cid is None or s["name"] == sc.CONVERSATION_SPAN:
            continue
        if (
            a.get(sc.GEN_AI_OPERATION_NAME) not in sc.LLM_OPERATIONS
            and s["name"] != sc.FEEDBACK_SPAN
        ):
            continue
        t = s["end_time_unix_nano"] or 0
        owner = next(
            (i for i in by_conversation.get(str(cid), ()) if i.start_ns <= t <= i.end_ns), None
        )
        if owner is None:
            continue
        step = _step(s)
        owner.steps.append(step)
        owner.findings += [
            Finding(step.trace_id, step.span_id, k, step.turn) for k in step.findings
        ]
        traces[s["trace_id"]] = owner
    for item in items:
        item.steps.sort(key=lambda st: st.start_ns)
        item.findings.sort(key=lambda f: (f.turn is None, f.turn or 0))
    queue = Queue(_order(items), counts[True], counts[False], sample_rate)
    return queue, verdicts, summaries.offset


class ReviewStore:
    """The queue and the verdicts of one store, kept current as the store grows. Thread-safe."""

    def __init__(self, path: str | os.PathLike[str], sample_rate: float) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._lock = threading.RLock()
        self._rebuild()

    def _rebuild(self) -> None:
        self.queue, verdicts, self._offset = build(self.path, self.sample_rate)
        self._verdicts = {v.verdict_span_id: v for v in verdicts}
        self._built = time.monotonic()
        self._stale = False

    def refresh(self) -> None:
        """Read what was appended: new verdicts at once, newly closed conversations by a rebuild."""
        with self._lock:
            try:
                size = traces_file(self.path).stat().st_size
            except OSError:
                size = 0
            if size < self._offset:  # the store was truncated or replaced
                self._rebuild()
                return
            tail = _Tail(self.path, self._offset)
            for s in tail.spans():
                if s["name"] == sc.REVIEW_SPAN:
                    v = from_span(s)
                    if v is not None:
                        self._verdicts[v.verdict_span_id] = v
                elif s["name"] == sc.CONVERSATION_SPAN:
                    self._stale = True
            self._offset = tail.offset
            if self._stale and time.monotonic() - self._built >= REBUILD_S:
                self._rebuild()

    def add(self, verdict: Verdict) -> None:
        """A verdict just written (it is read again from the store later, and kept once)."""
        with self._lock:
            self._verdicts[verdict.verdict_span_id] = verdict

    def verdicts(self) -> list[Verdict]:
        with self._lock:
            return list(self._verdicts.values())

    def latest(self, reviewer: str | None) -> dict[str, Latest]:
        """Item key -> what ``reviewer`` last said about it."""
        if not reviewer:
            return {}
        return {k: v for (k, who), v in latest(self.verdicts()).items() if who == reviewer}


__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "Finding",
    "Item",
    "Queue",
    "ReviewStore",
    "Step",
    "build",
    "in_sample",
]
