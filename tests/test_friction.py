"""The friction stage on spans shaped like the OpenAI instrumentation's: threading, kinds,
scores, review, summaries, metrics, bounded state, privacy."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frictionlens import semconv as S
from frictionlens.processors.friction import FrictionStage
from frictionlens.processors.friction import kinds as K
from frictionlens.processors.friction.conversations import RING
from frictionlens.processors.pipeline import SignalPipeline
from tests.scenarios.friction_model import CLOSE, IDLE
from tests.scenarios.friction_quality import findings
from tests.scenarios.friction_spans import SpanDriver

SYS = ("system", "You are the assistant of a bank. Be brief.")
Q1 = "How do I order a replacement for my lost debit card?"
A1 = "Open the app, go to Cards, select the lost card and tap 'Replace card'; the new one arrives in five working days."
Q2 = "Can I still use Apple Pay while I wait for the new card?"
A2 = "Yes, your digital card in Apple Pay keeps working with the new card number as soon as you order the replacement."
Q3 = "What fee do you charge for the replacement card?"
A3 = "The first replacement each year is free; after that it costs 5 euros, charged to your main account."
A2_AGAIN = "While you wait, pay with your phone: the card in your wallet app stays active during the replacement."


def U(text: str) -> tuple[str, str]:
    return ("user", text)


def A(text: str) -> tuple[str, str]:
    return ("assistant", text)


def exported(driver: SpanDriver) -> list[ReadableSpan]:
    return list(driver.exporter.get_finished_spans())


def call_spans(driver: SpanDriver) -> list[ReadableSpan]:
    return [s for s in exported(driver) if S.GEN_AI_OPERATION_NAME in (s.attributes or {})]


def summaries(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.name == S.CONVERSATION_SPAN]


def chat(driver: SpanDriver, *turns: tuple[str, str], conversation_id: str | None = None) -> None:
    """A history-resending app: one call per (question, answer)."""
    history = [SYS]
    for question, answer in turns:
        history.append(U(question))
        driver.call(list(history), answer, conversation_id=conversation_id)
        history.append(A(answer))
        driver.pause(30)


# -- threading -------------------------------------------------------------------------------
def test_inferred_conversation_threads_turns_without_inventing_a_gen_ai_id():
    d = SpanDriver()
    chat(d, (Q1, A1), (Q2, A2), (Q3, A3))
    spans = call_spans(d)
    ids = {s.attributes[S.CONVERSATION_ID] for s in spans}
    assert len(ids) == 1 and next(iter(ids)).startswith("i-")
    assert [s.attributes[S.CONVERSATION_TURN] for s in spans] == [1, 2, 3]
    assert all(S.GEN_AI_CONVERSATION_ID not in s.attributes for s in spans)
    assert all(
        S.FRICTION_KIND not in s.attributes and s.attributes[S.FRICTION_SCORE] == 0.0 for s in spans
    )
    assert all(s.attributes[S.REVIEW_NEEDED] is False for s in spans)


def test_inferred_id_agrees_across_replicas_sharing_the_salt():
    first, second, other = (
        SpanDriver(salt=b"shared"),
        SpanDriver(salt=b"shared"),
        SpanDriver(salt=b"other"),
    )
    chat(first, (Q1, A1), (Q2, A2))
    # a replica that only sees the second turn derives the same id from the resent history
    second.call([SYS, U(Q1), A(A1), U(Q2)], A2, conversation_id=None)
    other.call([SYS, U(Q1), A(A1), U(Q2)], A2, conversation_id=None)
    ids = [call_spans(d)[-1].attributes[S.CONVERSATION_ID] for d in (first, second, other)]
    assert ids[0] == ids[1] != ids[2]
    assert call_spans(second)[-1].attributes[S.CONVERSATION_TURN] == 2


def test_a_given_conversation_id_wins():
    d = SpanDriver()
    chat(d, (Q1, A1), (Q2, A2), conversation_id="chat-42")
    assert {s.attributes[S.CONVERSATION_ID] for s in call_spans(d)} == {"chat-42"}


def test_two_conversations_with_the_same_opening_stay_apart():
    d = SpanDriver()
    d.call([SYS, U(Q1)], A1, conversation_id=None)
    d.pause(3600)  # long after: another user with the same first message
    d.call([SYS, U(Q1)], A1 + " (again)", conversation_id=None)
    d.call([SYS, U("hi")], "Hello! How can I help?", conversation_id=None)
    d.call([SYS, U("hi")], "Hello! How can I help?", conversation_id=None)  # "hi" says nothing
    spans = call_spans(d)
    assert len({s.attributes[S.CONVERSATION_ID] for s in spans}) == 4
    assert not any(findings(s) for s in spans)


def test_agent_steps_stay_in_their_turn():
    d = SpanDriver()
    tool_call = ("assistant", '\nlookup_card({"last4": "1234"})')
    d.call([SYS, U(Q1)], "", conversation_id=None)  # the model asks for a tool
    d.call([SYS, U(Q1), tool_call, ("tool", '{"status": "lost"}')], A1, conversation_id=None)
    d.call(
        [SYS, U(Q1), tool_call, ("tool", '{"status": "lost"}'), A(A1), U(Q2)],
        A2,
        conversation_id=None,
    )
    spans = call_spans(d)
    assert len({s.attributes[S.CONVERSATION_ID] for s in spans}) == 1
    assert [s.attributes[S.CONVERSATION_TURN] for s in spans] == [1, 1, 2]


def test_spans_without_features_still_thread_by_a_given_id():
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(
        SignalPipeline([FrictionStage()], SimpleSpanProcessor(exporter), tick_interval_s=3600)
    )
    for _ in range(2):  # e.g. another instrumentation's spans, no content captured
        tp.get_tracer("t").start_span(
            "chat", attributes={S.GEN_AI_OPERATION_NAME: S.OP_CHAT, S.GEN_AI_CONVERSATION_ID: "c-1"}
        ).end()
    tp.get_tracer("t").start_span("GET /", attributes={"http.request.method": "GET"}).end()
    spans = exporter.get_finished_spans()
    assert [s.attributes.get(S.CONVERSATION_TURN) for s in spans] == [1, 2, None]
    assert S.FRICTION_SCORE not in spans[2].attributes  # not an LLM call: untouched


# -- kinds -------------------------------------------------------------------------------------
def test_resends_are_told_apart():
    d = SpanDriver()
    d.call([SYS, U(Q1)], A1, conversation_id=None)
    d.call([SYS, U(Q1), A(A1), U(Q2)], "", conversation_id=None, fail=True)  # error
    d.call([SYS, U(Q1), A(A1), U(Q2)], A2, conversation_id=None)  # same request again
    d.call([SYS, U(Q1), A(A1), U(Q2)], A2_AGAIN, conversation_id=None)  # answer discarded
    d.call(
        [SYS, U(Q1), A(A1), U(Q2 + " I mean for online shops.")], A3, conversation_id=None
    )  # last message changed
    spans = call_spans(d)
    assert [findings(s) for s in spans] == [set(), set(), {"retry"}, {"regenerate"}, {"edit"}]
    assert len({s.attributes[S.CONVERSATION_ID] for s in spans}) == 1
    assert [s.attributes[S.CONVERSATION_TURN] for s in spans] == [1, 2, 2, 2, 2]


def test_an_empty_answer_resent_is_a_retry():
    d = SpanDriver()
    d.call([SYS, U(Q1)], "", conversation_id="c")
    d.call([SYS, U(Q1)], A1, conversation_id="c")
    assert findings(call_spans(d)[1]) == {"retry"}


def test_editing_the_first_message_of_a_known_conversation():
    d = SpanDriver()
    chat(d, (Q1, A1), (Q2, A2), conversation_id="c")
    d.call([SYS, U(Q1 + " It was stolen, not lost.")], A1, conversation_id="c")
    assert findings(call_spans(d)[-1]) == {"edit"}
    assert call_spans(d)[-1].attributes[S.CONVERSATION_TURN] == 1


def test_a_stateless_app_restating_and_repeating():
    d = SpanDriver()
    questions = (
        Q1,
        "How do I order a replacement debit card? I lost mine.",
        "I lost my debit card: how do I order a replacement?",
    )
    for question, answer in zip(questions, (A1, A2, A3)):
        d.call([SYS, U(question)], answer, conversation_id="s")
    spans = call_spans(d)
    assert [s.attributes[S.CONVERSATION_TURN] for s in spans] == [1, 2, 3]
    assert [findings(s) for s in spans] == [set(), {"rephrase"}, {"repeat"}]


def test_a_call_with_several_kinds_reports_the_primary_and_every_event():
    d = SpanDriver()
    d.call([SYS, U(Q1)], A1, conversation_id=None)
    d.call(
        [SYS, U(Q1), A(A1), U("No, I meant how to order a replacement for my lost debit card.")],
        A1,
        conversation_id=None,
        abandon=True,
    )
    span = call_spans(d)[-1]
    assert findings(span) == {"correction", "stream_abandon"}
    assert (
        span.attributes[S.FRICTION_KIND]
        == K.primary(["correction", "stream_abandon"])
        == "correction"
    )
    assert span.attributes[S.FRICTION_CATEGORY] == S.CATEGORY_MISALIGNMENT
    assert span.attributes[S.FRICTION_SCORE] == pytest.approx(
        1 - (1 - K.KINDS["correction"].weight) * (1 - K.KINDS["stream_abandon"].weight)
    )
    events = [e for e in span.events if e.name == S.GEN_AI_EVALUATION_RESULT]
    assert {e.attributes[S.GEN_AI_EVALUATION_NAME] for e in events} == {S.EVALUATION_FRICTION}
    assert {
        e.attributes[S.GEN_AI_EVALUATION_SCORE_LABEL]: e.attributes[S.GEN_AI_EVALUATION_SCORE_VALUE]
        for e in events
    } == {
        "correction": K.KINDS["correction"].weight,
        "stream_abandon": K.KINDS["stream_abandon"].weight,
    }


def test_near_duplicate_answers_are_a_loop_short_ones_are_not():
    d = SpanDriver()
    chat(d, (Q1, A1), (Q2, A1 + " "), ("Thanks", "OK."), ("Bye", "OK."), conversation_id="c")
    assert [findings(s) for s in call_spans(d)] == [set(), {"loop"}, set(), set()]


# -- review, score, summary -------------------------------------------------------------------
def test_review_rule_default_and_configured():
    looping = ((Q1, A1), (Q2, A1 + " "), (Q3, A1 + "  "))
    d = SpanDriver()
    chat(d, *looping)
    flags = [
        (s.attributes[S.REVIEW_NEEDED], s.attributes.get(S.REVIEW_REASON)) for s in call_spans(d)
    ]
    assert flags == [
        (False, None),
        (False, None),
        (True, "stagnation:loop"),
    ]  # two stagnation findings
    strict = SpanDriver(review_rule={S.CATEGORY_STAGNATION: 1})
    chat(strict, *looping)
    assert [s.attributes[S.REVIEW_NEEDED] for s in call_spans(strict)] == [False, True, True]
    with pytest.raises(ValueError):
        FrictionStage(review_rule={"boredom": 1})
    with pytest.raises(ValueError):
        FrictionStage(review_rule={S.CATEGORY_STAGNATION: 0})


def test_summary_span_of_an_idle_conversation():
    d = SpanDriver()
    chat(d, (Q1, A1), (Q2, A2), conversation_id="c")
    d.call([SYS, U(Q1), A(A1), U(Q2)], A2_AGAIN, conversation_id="c")  # regenerate
    spans = d.finish(IDLE)
    (summary,) = summaries(spans)
    last = call_spans(d)[-1]
    assert summary.context.trace_id == last.context.trace_id
    assert summary.context.span_id not in {s.context.span_id for s in spans if s is not summary}
    assert summary.parent.span_id == last.context.span_id
    assert [link.context.span_id for link in summary.links] == [last.context.span_id]
    assert summary.start_time < summary.end_time == last.end_time
    a = summary.attributes
    assert a[S.CONVERSATION_ID] == a[S.GEN_AI_CONVERSATION_ID] == "c"
    assert (a[S.CONVERSATION_TURNS], a[S.CONVERSATION_CALLS]) == (2, 3)
    assert a[S.CONVERSATION_FRICTION_PREFIX + "regenerate"] == 1
    assert a[S.CONVERSATION_FRICTION_PREFIX + "silence"] == 1  # idled out right after friction
    assert a[S.FRICTION_SCORE] == pytest.approx(K.combine(0.0, ["regenerate", "silence"]))
    assert a[S.CONVERSATION_OUTCOME] == S.CONVERSATION_OUTCOME_ABANDONED
    assert a[S.CONVERSATION_END_REASON] == S.CONVERSATION_END_IDLE
    assert (a[S.REVIEW_NEEDED], a[S.REVIEW_REASON]) == (True, "misalignment:regenerate")
    assert findings(summary) == {"silence"}
    assert d.finish(IDLE) == spans  # ended conversations are summarised once


def test_summaries_at_shutdown_carry_no_silence_and_smooth_ones_are_not_flagged():
    d = SpanDriver()
    chat(d, (Q1, A1), (Q2, A2))
    d.call([SYS, U(Q3)], A3, conversation_id="c")
    d.call([SYS, U(Q3)], A2_AGAIN, conversation_id="c")  # regenerate, then shutdown
    ends = {s.attributes[S.CONVERSATION_ID]: s.attributes for s in summaries(d.finish(CLOSE))}
    inferred = next(a for k, a in ends.items() if k != "c")
    assert S.GEN_AI_CONVERSATION_ID not in inferred
    assert (inferred[S.CONVERSATION_OUTCOME], inferred[S.REVIEW_NEEDED]) == (
        S.CONVERSATION_OUTCOME_SMOOTH,
        False,
    )
    assert inferred[S.FRICTION_SCORE] == 0.0 and S.REVIEW_REASON not in inferred
    assert ends["c"][S.CONVERSATION_OUTCOME] == S.CONVERSATION_OUTCOME_RECOVERED
    assert ends["c"][S.CONVERSATION_END_REASON] == S.CONVERSATION_END_SHUTDOWN
    assert S.CONVERSATION_FRICTION_PREFIX + "silence" not in ends["c"]


def test_metrics():
    d = SpanDriver()
    chat(d, (Q1, A1), (Q2, A1 + " "), conversation_id="c")
    chat(d, (Q3, A3))
    d.finish(CLOSE)
    points = {}
    for rm in d.metrics.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points[m.name] = {
                    tuple(sorted(p.attributes.items())): p.value for p in m.data.data_points
                }
    assert points[S.METRIC_FRICTION_EVENTS] == {
        (
            ("category", "stagnation"),
            ("kind", "loop"),
            ("model", "gpt-4o-mini"),
            ("provider", "openai"),
        ): 1
    }
    assert points[S.METRIC_CONVERSATIONS] == {
        (("outcome", "recovered"), ("review_needed", False)): 1,
        (("outcome", "smooth"), ("review_needed", False)): 1,
    }


# -- bounded state ----------------------------------------------------------------------------
def test_state_is_bounded_and_evicted_conversations_are_summarised():
    d = SpanDriver(max_conversations=5)
    for i in range(20):
        chat(d, (f"{Q1} ({i})", f"{A1} ({i})"), (Q2, f"{A2} ({i})"))
    tracker = d.stage.tracker
    assert len(tracker) == 5
    assert len(tracker._requests) <= 5 * RING and len(tracker._calls) <= 2 * 5
    evicted = summaries(exported(d))
    assert len(evicted) == 15
    assert {s.attributes[S.CONVERSATION_END_REASON] for s in evicted} == {
        S.CONVERSATION_END_EVICTED
    }
    assert {s.attributes[S.CONVERSATION_TURNS] for s in evicted} == {2}


def test_idle_conversations_expire_and_active_ones_stay():
    d = SpanDriver(idle_timeout_s=60)
    chat(d, (Q1, A1))
    d.pause(120)
    chat(d, (Q2, A2))
    d.pipeline.tick(d.now - 30 * 10**9)
    assert len(summaries(exported(d))) == 1 and len(d.stage.tracker) == 1


# -- privacy ------------------------------------------------------------------------------------
def test_no_message_text_reaches_exported_telemetry():
    from tests.scenarios.friction_cases import SCENARIOS
    from tests.scenarios.friction_model import steps

    d = SpanDriver()
    texts = set()
    for scenario in SCENARIOS[:20]:
        for step, _ in steps(scenario, d):
            texts |= {t for t in (step.user, step.assistant) if len(t) >= 12}
    spans = d.finish(IDLE)
    values = []
    for span in spans:
        values += [str(v) for v in (span.attributes or {}).values()]
        for event in span.events:
            values += [str(v) for v in (event.attributes or {}).values()]
    blob = "\n".join(values).casefold()
    leaked = [t for t in texts if t.casefold()[:12] in blob]
    assert texts and not leaked
