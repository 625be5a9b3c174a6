"""``frictionlens.feedback()``: validation, the span it emits, and what the friction stage makes of it."""

from __future__ import annotations

import contextvars
import math

import pytest

from frictionlens import health, runtime
from frictionlens import semconv as S
from frictionlens.feedback import feedback
from tests.scenarios.friction_model import CLOSE
from tests.scenarios.friction_quality import findings
from tests.scenarios.friction_spans import SpanDriver

SYS = ("system", "You are a travel assistant.")
Q1 = "Which documents do I need to rent a car in Portugal?"
A1 = "A valid driving licence held for at least one year, your passport or ID card and a credit card in the driver's name."
Q2 = "Is an international driving permit required as well?"
A2 = "Not for licences issued in the EU or the UK; other licences should come with an international driving permit."


@pytest.fixture
def d(monkeypatch):
    driver = SpanDriver()
    monkeypatch.setattr(
        runtime, "tracer", lambda: driver.tracer
    )  # feedback() uses the installed tracer
    return driver


def feedback_spans(d: SpanDriver):
    return [s for s in d.exporter.get_finished_spans() if s.name == S.FEEDBACK_SPAN]


@pytest.mark.parametrize(
    "kind, value",
    [
        ("like", None),
        ("", None),
        (None, None),
        ("rating", None),
        ("rating", 4),
        (1.5, None),
        (-0.1, None),
        ("thumbs_down", math.nan),
        ("thumbs_down", True),
        ("thumbs_down", "bad"),
    ],
)
def test_wrong_use_is_a_clear_error(kind, value):
    with pytest.raises(ValueError):
        feedback(kind, value=value)


def test_negative_feedback_on_the_latest_call_in_context(d):
    d.call([SYS, ("user", Q1)], A1, conversation_id=None)
    feedback("thumbs_down")
    (span,) = feedback_spans(d)
    call = [s for s in d.exporter.get_finished_spans() if s.name != S.FEEDBACK_SPAN][0]
    assert [link.context.span_id for link in span.links] == [call.context.span_id]
    a = span.attributes
    assert (
        a[S.FEEDBACK_KIND] == "thumbs_down"
        and a[S.FEEDBACK_RESPONSE_ID] == call.attributes[S.GEN_AI_RESPONSE_ID]
    )
    assert a[S.CONVERSATION_ID] == call.attributes[S.CONVERSATION_ID]
    assert (a[S.FRICTION_KIND], a[S.FRICTION_CATEGORY]) == (
        "negative_feedback",
        S.CATEGORY_MISALIGNMENT,
    )
    assert (a[S.REVIEW_NEEDED], a[S.REVIEW_REASON]) == (True, "misalignment:negative_feedback")
    (event,) = span.events
    assert event.attributes[S.GEN_AI_RESPONSE_ID] == call.attributes[S.GEN_AI_RESPONSE_ID]
    (summary,) = [s for s in d.finish(CLOSE) if s.name == S.CONVERSATION_SPAN]
    assert summary.attributes[S.CONVERSATION_FRICTION_PREFIX + "negative_feedback"] == 1
    assert summary.attributes[S.REVIEW_NEEDED] is True


def test_feedback_from_another_request_by_response_id_or_conversation_id(d):
    d.call([SYS, ("user", Q1)], A1, conversation_id=None)
    d.call([SYS, ("user", Q2)], A2, conversation_id="trip-7")
    calls = [s for s in d.exporter.get_finished_spans()]
    inferred_id, response_id = (
        calls[0].attributes[S.CONVERSATION_ID],
        calls[0].attributes[S.GEN_AI_RESPONSE_ID],
    )
    # e.g. the thumbs-down button's own HTTP request: no latest call in its context
    contextvars.Context().run(feedback, 0.2, response_id=response_id)
    contextvars.Context().run(feedback, "abandon", conversation_id="trip-7")
    by_kind = {s.attributes[S.FEEDBACK_KIND]: s.attributes for s in feedback_spans(d)}
    assert (
        by_kind["rating"][S.CONVERSATION_ID] == inferred_id
        and by_kind["rating"][S.FEEDBACK_VALUE] == 0.2
    )
    assert by_kind["rating"][S.FRICTION_KIND] == "negative_feedback"
    assert by_kind["abandon"][S.CONVERSATION_ID] == "trip-7"
    assert by_kind["abandon"][S.FRICTION_CATEGORY] == S.CATEGORY_DISENGAGEMENT


def test_positive_feedback_is_counted_not_friction(d):
    d.call([SYS, ("user", Q1)], A1, conversation_id="c")
    for kind in ("thumbs_up", "copy", 0.9):
        feedback(kind)
    assert not any(findings(s) for s in feedback_spans(d))
    assert all(S.FRICTION_SCORE not in s.attributes for s in feedback_spans(d))
    (summary,) = [s for s in d.finish(CLOSE) if s.name == S.CONVERSATION_SPAN]
    assert summary.attributes[S.CONVERSATION_FEEDBACK_POSITIVE] == 3
    assert summary.attributes[S.CONVERSATION_OUTCOME] == S.CONVERSATION_OUTCOME_SMOOTH


def test_a_regenerate_both_reported_and_seen_counts_once(d):
    d.call([SYS, ("user", Q1)], A1, conversation_id="c")
    feedback("regenerate")  # the app reports the button press, then resends
    d.call([SYS, ("user", Q1)], A2, conversation_id="c")
    d.call(
        [SYS, ("user", Q1)], "You need your licence, an ID and a credit card.", conversation_id="c"
    )  # pressed again
    (summary,) = [s for s in d.finish(CLOSE) if s.name == S.CONVERSATION_SPAN]
    assert summary.attributes[S.CONVERSATION_FRICTION_PREFIX + "regenerate"] == 2


def test_feedback_for_an_unknown_conversation_still_carries_its_finding(d):
    contextvars.Context().run(feedback, "thumbs_down", conversation_id="gone")
    (span,) = feedback_spans(d)
    assert span.attributes[S.CONVERSATION_ID] == "gone"
    assert findings(span) == {"negative_feedback"} and span.attributes[S.REVIEW_NEEDED] is True


def test_feedback_never_breaks_the_app(monkeypatch):
    def broken():
        raise RuntimeError("no tracer")

    monkeypatch.setattr(runtime, "tracer", broken)
    before = health.internal_errors().get("feedback", 0)
    contextvars.Context().run(feedback, "thumbs_up")
    assert health.internal_errors()["feedback"] == before + 1
