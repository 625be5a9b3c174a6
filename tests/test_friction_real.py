"""Friction that holds on conversations the detectors were not written with.

The three misses seen on real support conversations, rebuilt as our own examples and played
through the real ``openai`` SDK against the local server (an edited first message, a rephrase
after an answer that failed, a thumbs-down on the only call); short reactions; the review
rule per kind; and a slice of the BANKING77-built conversations of
``tests/scenarios/friction_real.py`` (the full run is that script; docs/quality.md).
"""

from __future__ import annotations

import pytest

from frictionlens import semconv as S
from frictionlens.localserver import LocalLLMServer
from frictionlens.processors.friction import kinds as K
from tests.scenarios import friction_real as real
from tests.scenarios.friction_model import CLOSE
from tests.scenarios.friction_quality import findings
from tests.scenarios.friction_spans import SpanDriver

SYS = ("system", "You are the support assistant of a cloud database service.")
Q1 = "How can I restore a deleted database snapshot?"
NON_ANSWER = "Snapshots are point-in-time copies of your database volumes."
ENGAGED = (
    "Open Snapshots, filter by Deleted and choose Restore: a deleted snapshot stays "
    "restorable for seven days."
)
RESTATED = "How do I get back a snapshot that I deleted by mistake?"
FOLLOW_UP = "Can I restore it into a different region?"
A2 = "Yes: pick the target region in the restore dialog; cross-region restores take longer."

# floors for the BANKING77 slice (two conversations of each shape per intent): a few points
# under the full run's figures in docs/quality.md, so that a real regression fails
SLICE_REPHRASE_F1_FLOOR = 0.62
SLICE_REVIEW_PRECISION_FLOOR = 0.6
SLICE_FOLLOW_UPS_FLAGGED_MAX = 0.03
SLICE_NON_ANSWER_RECALL_FLOOR = 0.85
#: real model answers (cassettes) judged non-answers, at most (measured: 5 of 203, some real)
CASSETTE_NON_ANSWERS_MAX = 0.04


@pytest.fixture(scope="module")
def llm():
    with LocalLLMServer() as server:
        yield server


@pytest.fixture
def sdk(llm):
    pytest.importorskip("openai")
    from tests.scenarios.friction_sdk import SDKDriver

    return lambda **options: SDKDriver(server=llm, **options)


def chat_spans(spans):
    return [s for s in spans if (s.attributes or {}).get(S.GEN_AI_OPERATION_NAME) == S.OP_CHAT]


def summaries(spans):
    return [s for s in spans if s.name == S.CONVERSATION_SPAN]


def review(spans) -> list[bool]:
    return [bool(s.attributes[S.REVIEW_NEEDED]) for s in summaries(spans)]


# -- the three misses, through the SDK -----------------------------------------------------
def test_an_edited_first_message_stays_in_its_conversation_as_an_edit(sdk):
    d = sdk()
    q2 = "And how long does a restore take?"
    d.call([SYS, ("user", Q1)], ENGAGED, conversation_id=None)
    d.call([SYS, ("user", Q1), ("assistant", ENGAGED), ("user", q2)], A2, conversation_id=None)
    edited = "How can I restore a database snapshot that a colleague deleted?"
    history = [SYS, ("user", edited), ("assistant", ENGAGED), ("user", q2)]
    a3 = "A few minutes for small databases, up to an hour for large ones."
    d.call(history, a3, conversation_id=None)
    d.call(
        [*history, ("assistant", a3), ("user", "Thanks, and the cost?")],
        "Restores are free; storage is billed as usual.",
        conversation_id=None,
    )
    spans = d.finish(CLOSE)
    calls = chat_spans(spans)
    assert len({c.attributes[S.CONVERSATION_ID] for c in calls}) == 1
    assert [findings(c) for c in calls] == [set(), set(), {"edit"}, set()]
    assert [c.attributes[S.CONVERSATION_TURN] for c in calls] == [1, 2, 2, 3]
    assert len(summaries(spans)) == 1


def test_the_only_message_edited_in_a_known_conversation_is_an_edit(sdk):
    d = sdk()
    d.call([SYS, ("user", Q1)], ENGAGED, conversation_id="c1")
    d.call(
        [SYS, ("user", Q1), ("assistant", ENGAGED), ("user", FOLLOW_UP)], A2, conversation_id="c1"
    )
    d.call([SYS, ("user", RESTATED)], ENGAGED, conversation_id="c1")
    calls = chat_spans(d.finish(CLOSE))
    assert [findings(c) for c in calls] == [set(), set(), {"edit"}]


def test_a_restatement_after_an_answer_that_failed_needs_review(sdk):
    d = sdk()
    d.call([SYS, ("user", Q1)], NON_ANSWER, conversation_id=None)
    d.call(
        [SYS, ("user", Q1), ("assistant", NON_ANSWER), ("user", RESTATED)],
        ENGAGED,
        conversation_id=None,
    )
    spans = d.finish(CLOSE)
    first, second = chat_spans(spans)
    assert first.attributes[S.OUTPUT_NON_ANSWER] is True
    assert second.attributes[S.OUTPUT_NON_ANSWER] is False
    assert findings(second) == {"rephrase"}
    assert (second.attributes[S.REVIEW_NEEDED], second.attributes[S.REVIEW_REASON]) == (
        True,
        "misalignment:rephrase",
    )
    assert review(spans) == [True]


def test_the_same_words_after_an_answer_that_engaged_are_a_follow_up(sdk):
    d = sdk()
    d.call([SYS, ("user", Q1)], ENGAGED, conversation_id=None)
    d.call(
        [SYS, ("user", Q1), ("assistant", ENGAGED), ("user", FOLLOW_UP)], A2, conversation_id=None
    )
    spans = d.finish(CLOSE)
    assert [findings(c) for c in chat_spans(spans)] == [set(), set()]
    assert chat_spans(spans)[0].attributes[S.OUTPUT_NON_ANSWER] is False
    assert review(spans) == [False]


@pytest.mark.parametrize("rule", [None, {S.CATEGORY_STAGNATION: 1}])
def test_a_thumbs_down_on_the_only_call_needs_review_whatever_the_rule(sdk, rule):
    d = sdk(review_rule=rule)
    d.call([SYS, ("user", Q1)], ENGAGED, conversation_id=None)
    d.feedback("thumbs_down")
    spans = d.finish(CLOSE)
    (feedback,) = [s for s in spans if s.name == S.FEEDBACK_SPAN]
    assert feedback.attributes[S.REVIEW_NEEDED] is True
    assert review(spans) == [True]


# -- short reactions, review per kind, regenerate ------------------------------------------
@pytest.mark.parametrize(
    "reaction, kinds",
    [
        ("No, it needs to be restorable in the north region.", {"correction"}),
        ("No I am looking for that specifically.", {"correction"}),
        ("Not that, the one from yesterday.", {"correction"}),
        ("I already said it was deleted.", {"correction"}),
        ("Still not working.", {"negative_feedback"}),
        ("Nein, ich meine den Snapshot von gestern.", {"correction"}),
        ("No, thanks, that's all.", set()),
        ("No, that will be all, thank you.", set()),
        ("Nein danke, das war's.", set()),
        ("Non merci, c'est tout.", set()),
    ],
)
def test_short_reactions_right_after_an_answer(reaction, kinds):
    d = SpanDriver()
    d.call([SYS, ("user", Q1)], ENGAGED, conversation_id="c")
    d.call([SYS, ("user", Q1), ("assistant", ENGAGED), ("user", reaction)], A2, conversation_id="c")
    assert findings(chat_spans(d.finish(CLOSE))[1]) == kinds


@pytest.mark.parametrize(
    "question, offer, reaction",
    [
        (
            "I need a guest house with free parking in the north.",
            "The Acorn guest house in the north has free parking. Would you like me to book it?",
            "No, I just need the phone number.",
        ),
        (
            "Ich suche ein Hotel mit Parkplatz im Norden.",
            "Das Acorn im Norden hat einen Parkplatz und noch Zimmer frei. Soll ich eines reservieren?",
            "Nein, ich brauche nur die Adresse.",
        ),
    ],
)
def test_no_to_an_offer_is_an_answer_not_a_correction(question, offer, reaction):
    d = SpanDriver()
    d.call([SYS, ("user", question)], offer, conversation_id="c")
    d.call(
        [SYS, ("user", question), ("assistant", offer), ("user", reaction)], A2, conversation_id="c"
    )
    calls = chat_spans(d.finish(CLOSE))
    assert calls[0].attributes[S.OUTPUT_NON_ANSWER] is False
    assert [findings(c) for c in calls] == [set(), set()]


def test_one_weak_rephrase_does_not_flag_a_conversation_two_do():
    d = SpanDriver()
    q = "How do I restore a deleted database snapshot from last week?"
    again = "How do I restore a deleted database snapshot from last Tuesday?"
    third = "How do I restore the database snapshot I deleted last week?"
    history = [SYS, ("user", q)]
    last = "Restores of deleted snapshots are listed under Activity once they have finished."
    for user, answer in ((q, ENGAGED), (again, A2), (third, last)):
        if user is not q:
            history.append(("user", user))
        d.call(list(history), answer, conversation_id="c")
        history.append(("assistant", answer))
    calls = chat_spans(d.finish(CLOSE))
    assert [findings(c) for c in calls] == [set(), {"rephrase"}, {"repeat"}]
    assert [c.attributes[S.REVIEW_NEEDED] for c in calls] == [False, False, True]


def test_a_regenerated_answer_equal_to_the_one_it_replaces_is_not_a_loop():
    d = SpanDriver()
    d.call([SYS, ("user", Q1)], ENGAGED, conversation_id="c")
    d.call([SYS, ("user", Q1)], ENGAGED, conversation_id="c")
    assert [findings(c) for c in chat_spans(d.finish(CLOSE))] == [set(), {"regenerate"}]


def test_the_kind_table_drives_score_review_and_removal():
    saved = dict(K.KINDS)
    try:
        K.add(S.FRICTION_REPHRASE, K.Kind(S.CATEGORY_MISALIGNMENT, 0.45, review=1))
        K.add("toy", K.Kind(S.CATEGORY_STAGNATION, 0.2, review=3))
        assert K.primary(["toy", S.FRICTION_REPHRASE]) == S.FRICTION_REPHRASE
        assert K.crossing(K.default_review_rule(), {"toy": 2}, ["toy"]) is None
        assert K.crossing(K.default_review_rule(), {"toy": 3}, ["toy"]) == "stagnation:toy"
        K.remove(S.FRICTION_REGENERATE)
        d = SpanDriver()
        q = "How do I restore a deleted database snapshot from last week?"
        again = "How do I restore a deleted database snapshot from last Tuesday?"
        d.call([SYS, ("user", q)], ENGAGED, conversation_id="c")
        d.call([SYS, ("user", q)], A2, conversation_id="c")  # a regenerate: not reported now
        d.call(
            [SYS, ("user", q), ("assistant", A2), ("user", again)],
            "Deleted snapshots can be restored for seven days from the Activity page.",
            conversation_id="c",
        )
        calls = chat_spans(d.finish(CLOSE))
        assert [findings(c) for c in calls] == [set(), set(), {"rephrase"}]
        assert calls[2].attributes[S.REVIEW_NEEDED] is True  # rephrase now flags at once
        with pytest.raises(ValueError):
            K.add("bad", K.Kind("boredom", 0.5))
        with pytest.raises(ValueError):
            K.add("bad", K.Kind(S.CATEGORY_STAGNATION, 0.5, cue=True))
    finally:
        K.KINDS.clear()
        K.KINDS.update(saved)
        K.add(S.FRICTION_GIVE_UP, saved[S.FRICTION_GIVE_UP])  # restores the order index


# -- BANKING77-built conversations -----------------------------------------------------------
@pytest.fixture(scope="module")
def banking():
    if not real.corpus_available():
        pytest.skip("the shared corpus (../shared/corpus/banking77 beside the repo) is absent")


@pytest.mark.parametrize("part", [real.TUNE, real.HELD_OUT])
def test_banking77_slice_meets_the_documented_floors(banking, part):
    r = real.run_part(part, per_intent=2)
    assert r.conversations >= 200
    assert r.rephrase.f1 >= SLICE_REPHRASE_F1_FLOOR, real.table({part: r})
    assert r.review.precision >= SLICE_REVIEW_PRECISION_FLOOR, real.table({part: r})
    assert r.follow_ups_flagged <= SLICE_FOLLOW_UPS_FLAGGED_MAX * r.follow_ups
    assert r.non_answer.recall >= SLICE_NON_ANSWER_RECALL_FLOOR
    assert r.first_calls_flagged == 0


def test_banking77_conversations_through_the_sdk_find_what_the_stage_finds(banking, sdk):
    convs = real.conversations(real.HELD_OUT, per_intent=1)[:24]
    direct = [
        ([findings(s) for s in spans], summary.attributes[S.REVIEW_NEEDED])
        for _, spans, summary in real.play(convs, SpanDriver(salt=b"scenario-salt"))
    ]
    through = [
        ([findings(s) for s in spans], summary.attributes[S.REVIEW_NEEDED])
        for _, spans, summary in real.play(convs, sdk())
    ]
    assert through == direct
    assert any(flag for _, flag in through) and not all(flag for _, flag in through)


def test_real_model_answers_are_rarely_non_answers():
    if not real.CASSETTES.is_dir():
        pytest.skip("the shared corpus (../shared/corpus/cassettes beside the repo) is absent")
    flagged, total = real.cassette_non_answers()
    assert total >= 150
    assert flagged <= CASSETTE_NON_ANSWERS_MAX * total
