"""A reviewer's verdict as OpenTelemetry data: one ``frictionlens.review`` span per submission.

The span is linked to the conversation's summary span and carries the conversation-level
verdict (``frictionlens.review.verdict``: did it need review?) and/or one
``frictionlens.review.finding`` event per friction finding judged. Verdicts are appended to
the store they concern and, when an OTLP endpoint is configured, exported there as well, so
they live beside the traces in any backend. Reading them back (``from_span``, ``latest``) is
shared by the review app and the report's signal-quality section.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from frictionlens import semconv as sc
from frictionlens.exporters import otlp
from frictionlens.exporters.filestore import FileSpanExporter, traces_file

#: finding verdicts a reviewer can give
FINDING_VERDICTS = (sc.FINDING_CONFIRMED, sc.FINDING_FALSE_ALARM, sc.FINDING_OTHER_KIND)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ids = RandomIdGenerator()


class WriteError(OSError):
    """The verdict could not be written to the store; nothing was recorded."""


@dataclass(frozen=True)
class FindingVerdict:
    """A reviewer's verdict on one friction finding (a kind on one span of the conversation)."""

    trace_id: str
    span_id: str
    kind: str
    verdict: str
    actual_kind: str | None = None

    @property
    def key(self) -> str:
        return finding_key(self.span_id, self.kind)


@dataclass(frozen=True)
class Verdict:
    """One submission of one reviewer on one conversation (its summary span's ids)."""

    conversation_id: str
    trace_id: str
    span_id: str
    reviewer: str
    source: str
    sample_probability: float
    needed: bool | None = None
    note: str = ""
    findings: tuple[FindingVerdict, ...] = ()
    time_unix_nano: int = 0
    verdict_span_id: str = ""


def finding_key(span_id: str, kind: str) -> str:
    """One finding: the kind on the span that carries it."""
    return f"{span_id}:{kind}"


def to_span(v: Verdict, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    now = v.time_unix_nano or time.time_ns()
    attrs: dict[str, Any] = {
        sc.REVIEW_CONVERSATION_ID: v.conversation_id,
        sc.REVIEW_REVIEWER: v.reviewer,
        sc.REVIEW_SOURCE: v.source,
        sc.REVIEW_SAMPLE_PROBABILITY: v.sample_probability,
    }
    if v.needed is not None:
        attrs[sc.REVIEW_VERDICT] = (
            sc.REVIEW_VERDICT_NEEDED if v.needed else sc.REVIEW_VERDICT_NOT_NEEDED
        )
    if v.note:
        attrs[sc.REVIEW_NOTE] = v.note
    events = []
    for f in v.findings:
        ev: dict[str, Any] = {
            sc.FRICTION_KIND: f.kind,
            sc.REVIEW_FINDING_VERDICT: f.verdict,
            sc.REVIEW_FINDING_TRACE_ID: f.trace_id,
            sc.REVIEW_FINDING_SPAN_ID: f.span_id,
        }
        if f.actual_kind:
            ev[sc.REVIEW_FINDING_ACTUAL_KIND] = f.actual_kind
        events.append(Event(sc.REVIEW_FINDING_EVENT, ev, now))
    conversation = SpanContext(int(v.trace_id, 16), int(v.span_id, 16), False, _SAMPLED)
    return ReadableSpan(
        name=sc.REVIEW_SPAN,
        context=SpanContext(_ids.generate_trace_id(), _ids.generate_span_id(), False, _SAMPLED),
        resource=resource,
        attributes=attrs,
        events=events,
        links=(Link(conversation),),
        kind=SpanKind.INTERNAL,
        start_time=now,
        end_time=now,
        instrumentation_scope=scope,
    )


def from_span(s: dict[str, Any]) -> Verdict | None:
    """The verdict of a ``frictionlens.review`` span (a ``span_dict``); None for any other span
    and for one that names no reviewer or no conversation."""
    a = s["attributes"]
    if s["name"] != sc.REVIEW_SPAN or not s["links"] or not a.get(sc.REVIEW_REVIEWER):
        return None
    link = s["links"][0]
    verdict = a.get(sc.REVIEW_VERDICT)
    findings = tuple(
        FindingVerdict(
            str(e.get(sc.REVIEW_FINDING_TRACE_ID, "")),
            str(e.get(sc.REVIEW_FINDING_SPAN_ID, "")),
            str(e.get(sc.FRICTION_KIND, "")),
            str(e.get(sc.REVIEW_FINDING_VERDICT, "")),
            e.get(sc.REVIEW_FINDING_ACTUAL_KIND),
        )
        for ev in s["events"]
        if ev["name"] == sc.REVIEW_FINDING_EVENT
        for e in [ev["attributes"]]
        if e.get(sc.REVIEW_FINDING_VERDICT) in FINDING_VERDICTS
    )
    return Verdict(
        conversation_id=str(a.get(sc.REVIEW_CONVERSATION_ID, "")),
        trace_id=link["trace_id"],
        span_id=link["span_id"],
        reviewer=str(a[sc.REVIEW_REVIEWER]),
        source=str(a.get(sc.REVIEW_SOURCE, "")),
        sample_probability=float(a.get(sc.REVIEW_SAMPLE_PROBABILITY) or 1.0),
        needed=None if verdict is None else verdict == sc.REVIEW_VERDICT_NEEDED,
        note=str(a.get(sc.REVIEW_NOTE, "")),
        findings=findings,
        time_unix_nano=s.get("end_time_unix_nano") or 0,
        verdict_span_id=s["span_id"],
    )


@dataclass
class Latest:
    """What one reviewer last said about one conversation: their latest conversation-level
    verdict and note, and their latest verdict on each finding."""

    reviewer: str
    needed: bool | None = None
    note: str = ""
    findings: dict[str, FindingVerdict] = field(default_factory=dict)
    source: str = ""


def latest(verdicts: Iterable[Verdict]) -> dict[tuple[str, str], Latest]:
    """(conversation summary span id, reviewer) -> their latest word, submissions in time order."""
    out: dict[tuple[str, str], Latest] = {}
    for v in sorted(verdicts, key=lambda v: v.time_unix_nano):
        cur = out.setdefault((v.span_id, v.reviewer), Latest(v.reviewer, source=v.source))
        if v.needed is not None:
            cur.needed = v.needed
        if v.note:
            cur.note = v.note
        for f in v.findings:
            cur.findings[f.key] = f
    return out


class VerdictWriter:
    """Appends verdict spans to the store (the data dir's traces file, or the traces file
    given) and, when ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set, exports them there too."""

    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.path = traces_file(store)
        self._file = FileSpanExporter(self.path.parent, file_name=self.path.name)
        self._otlp: SpanProcessor | None = None
        if otlp.endpoint_configured():
            from frictionlens.exporters.delivery import CountedBatchSpanProcessor

            self._otlp = CountedBatchSpanProcessor(otlp.span_exporter())
        from frictionlens import __version__

        self._resource = Resource.create(
            {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or sc.REVIEW_SERVICE_NAME}
        )
        self._scope = InstrumentationScope(sc.SCOPE_NAME, __version__)

    def write(self, verdict: Verdict) -> Verdict:
        """Record ``verdict``; raises :class:`WriteError` (nothing recorded) if the store refuses it.
        Returns the verdict as recorded (with its time and span id)."""
        span = to_span(verdict, self._resource, self._scope)
        if self._file.export([span]) is not SpanExportResult.SUCCESS:
            raise WriteError(f"could not append to {self.path}")
        if self._otlp is not None:
            self._otlp.on_end(span)
        return replace(
            verdict,
            time_unix_nano=span.end_time or 0,
            verdict_span_id=format(span.context.span_id, "016x"),
        )

    def shutdown(self) -> None:
        if self._otlp is not None:
            self._otlp.shutdown()


__all__ = [
    "FINDING_VERDICTS",
    "FindingVerdict",
    "Latest",
    "Verdict",
    "VerdictWriter",
    "WriteError",
    "finding_key",
    "from_span",
    "latest",
    "to_span",
]
