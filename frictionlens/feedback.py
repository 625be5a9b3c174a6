"""``frictionlens.feedback()``: what only the app sees (thumbs, copies, ratings, edits).

Feedback travels as a small span (``frictionlens.feedback``) linked to the call it rates,
so it takes the same path as every other signal: the friction stage turns negative
feedback into friction on that call's conversation, in-process or in the collector.
"""

from __future__ import annotations

import logging
import math
from numbers import Real

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags

from frictionlens import semconv
from frictionlens.context import CallRef, last_call
from frictionlens.health import count_internal_error

_log = logging.getLogger(__name__)

#: kind -> the friction it counts as (None: positive or neutral)
FEEDBACK_KINDS: dict[str, str | None] = {
    semconv.FEEDBACK_THUMBS_DOWN: semconv.FRICTION_NEGATIVE_FEEDBACK,
    semconv.FEEDBACK_THUMBS_UP: None,
    semconv.FEEDBACK_COPY: None,
    semconv.FEEDBACK_EDIT: semconv.FRICTION_EDIT,
    semconv.FEEDBACK_REGENERATE: semconv.FRICTION_REGENERATE,
    semconv.FEEDBACK_ABANDON: semconv.FRICTION_GIVE_UP,
    semconv.FEEDBACK_RATING: None,
}
#: a rating (0..1) below this is negative feedback
NEGATIVE_RATING_BELOW = 0.5


def friction_of(kind: str, value: object = None) -> str | None:
    """The friction kind a piece of feedback counts as; None for positive or neutral."""
    if kind == semconv.FEEDBACK_RATING:
        if isinstance(value, Real) and float(value) < NEGATIVE_RATING_BELOW:
            return semconv.FRICTION_NEGATIVE_FEEDBACK
        return None
    return FEEDBACK_KINDS.get(kind)


def feedback(
    kind: str | float,
    *,
    conversation_id: str | None = None,
    response_id: str | None = None,
    value: float | None = None,
) -> None:
    """Report what the user did with an answer.

    ``kind``: ``thumbs_down``, ``thumbs_up``, ``copy``, ``edit``, ``regenerate``,
    ``abandon``, or a rating in 0..1 (a number, or ``"rating"`` with ``value``; divide
    ratings on other scales by their maximum). Without ``conversation_id`` or
    ``response_id`` it applies to the latest instrumented call in the current context.
    Raises ValueError for an unknown kind or a rating outside 0..1; never raises otherwise.
    """
    if isinstance(kind, Real) and not isinstance(kind, bool):
        kind, value = semconv.FEEDBACK_RATING, kind
    if not isinstance(kind, str) or kind not in FEEDBACK_KINDS:
        raise ValueError(
            f"unknown feedback kind {kind!r}; use one of {sorted(FEEDBACK_KINDS)} or a rating in 0..1"
        )
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"feedback value must be a finite number, not {value!r}")
        value = float(value)
    if kind == semconv.FEEDBACK_RATING and (value is None or not 0.0 <= value <= 1.0):
        raise ValueError(
            f"a rating must be a number in 0..1 (got {value!r}); divide by your scale's maximum"
        )
    call = last_call.get() if conversation_id is None and response_id is None else None
    try:
        from frictionlens import runtime

        emit_feedback(
            runtime.tracer(),
            kind,
            conversation_id=conversation_id,
            response_id=response_id,
            value=value,
            call=call,
        )
    except Exception:  # never break the app for a signal
        count_internal_error("feedback")
        _log.debug("recording feedback failed", exc_info=True)


def emit_feedback(
    tracer: trace.Tracer,
    kind: str,
    *,
    conversation_id: str | None = None,
    response_id: str | None = None,
    value: float | None = None,
    call: CallRef | None = None,
) -> Span:
    """Start and end the feedback span (``feedback()`` after validation; replay drivers)."""
    attrs: dict[str, str | float] = {semconv.FEEDBACK_KIND: kind}
    if value is not None:
        attrs[semconv.FEEDBACK_VALUE] = value
    links = []
    if call is not None:
        links.append(
            Link(SpanContext(call.trace_id, call.span_id, False, TraceFlags(TraceFlags.SAMPLED)))
        )
        response_id = response_id or call.response_id
        conversation_id = conversation_id or call.conversation_id
    if conversation_id is not None:
        attrs[semconv.FEEDBACK_CONVERSATION_ID] = str(conversation_id)
    if response_id is not None:
        attrs[semconv.FEEDBACK_RESPONSE_ID] = str(response_id)
    span = tracer.start_span(
        semconv.FEEDBACK_SPAN, kind=SpanKind.INTERNAL, attributes=attrs, links=links
    )
    span.end()
    return span
