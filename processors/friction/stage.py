"""The friction stage: what users do when an answer failed them, found on the calls that show it.

Per LLM call (``chat``, ``text_completion``, ``generate_content``) it threads the call into
its conversation (``conversations.py``), finds friction, and sets
``frictionlens.conversation.id`` / ``.turn``, ``frictionlens.friction.kind`` / ``.category``
/ ``.score`` and ``frictionlens.review.needed`` / ``.reason``; each finding is also a
``gen_ai.evaluation.result`` event and a ``frictionlens.friction.events`` count.

Kinds, on the call that shows them:

* ``retry`` / ``regenerate``: the same history resent, after a failed call (error or empty
  answer) / after an answer;
* ``edit``: the history resent with its last user message changed;
* ``rephrase``: a new user message similar to the previous one (``rephrase_threshold``;
  ``after_failure_threshold``, lower, when the answer between them failed the request:
  ``frictionlens.output.non_answer``), unless it carries a correction, negative or give-up cue;
* ``repeat``: the third (or later) user message in a row asking the same thing;
* ``correction`` / ``negative_feedback`` / ``give_up``: the cue of that name found in a user
  message after the first answer ("no, I meant…", "that's wrong", "forget it"; phrase lists
  per language in frictionlens/features/data; which kinds a cue finds: ``kinds.KINDS``);
* ``loop``: an answer near-duplicating (``duplicate_threshold``) one of the conversation's
  latest answers (not the one a regenerate replaces: the same answer to the same request
  is the regenerate's own finding);
* ``stream_abandon``: the caller closed the stream early;
* ``negative_feedback`` / ``regenerate`` / ``edit`` / ``give_up`` from ``frictionlens.feedback``
  spans (a regenerate or edit both reported and seen in the history counts once);
* ``silence``: the conversation idled out right after misalignment or stagnation (on the
  summary span).

Scores, the primary kind, the review rule and outcomes: ``kinds.py``. When a conversation ends (idle
for ``idle_timeout_s``, evicted by the cap, or at shutdown) one ``frictionlens.conversation``
span summarises it, in the trace of its last call and linked to it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping

from opentelemetry import metrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import AttributeValue

from frictionlens import semconv
from frictionlens.features import text as _text
from frictionlens.features.record import TextFeatures
from frictionlens.features.text import similarity, sketch_similarity
from frictionlens.feedback import FEEDBACK_KINDS, friction_of
from frictionlens.processors.friction import kinds as K
from frictionlens.processors.friction.conversations import (
    EDIT,
    NEW,
    RESEND,
    Conversation,
    ConversationTracker,
    Threading,
)
from frictionlens.processors.pipeline import Emit, SpanRecord

#: ``text.similarity`` at or above which a new user message restates the previous one.
#: ``text.REPHRASE_THRESHOLD`` marks where a restatement becomes *possible* (two strangers
#: asking for the same thing), and a follow-up on the same topic clears it too; in a chat,
#: where most user turns are such follow-ups, a flag must be rarer. On BANKING77
#: (bench/rephrase.py samples) 0.8% of neighbouring-intent pairs (same topic, another
#: request: what a follow-up looks like) reach 0.25, against 23% at REPHRASE_THRESHOLD; a
#: user restating their own question keeps far more of its wording than a stranger would.
RESTATE_THRESHOLD = 0.25
#: ``text.similarity`` at or above which a user message restates the previous one when the
#: answer between them failed it (``frictionlens.output.non_answer``): after a failed answer
#: a user restating in other words is the expected reaction, and a follow-up is rare. Chosen
#: on the tune part of tests/scenarios/friction_real.py (docs/quality.md)
AFTER_FAILURE_THRESHOLD = 0.06
#: a bare "No, …" opening a user turn (cue ``reaction``) corrects the answer before it,
#: unless that answer asked the user something (cue ``asks``: "Would you like me to book
#: it?" "No, just the address.")
REACTION_CUE, ASKS_CUE = "reaction", "asks"
_POSITIVE_FEEDBACK = frozenset(k for k, v in FEEDBACK_KINDS.items() if v is None) - {
    semconv.FEEDBACK_RATING
}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_EMPTY_RESOURCE = Resource.get_empty()
_ids = RandomIdGenerator()
_Get = Callable[[str], object]
"""reads a span attribute, what earlier stages added first (None when absent)"""


class FrictionStage:
    """Pipeline stage: conversations, friction findings, scores, review flags, summaries."""

    def __init__(
        self,
        *,
        idle_timeout_s: float = 1800.0,
        max_conversations: int = 10_000,
        review_rule: Mapping[str, int] | None = None,
        rephrase_threshold: float | None = None,
        after_failure_threshold: float | None = None,
        duplicate_threshold: float | None = None,
        min_rephrase_chars: int = 16,
        min_loop_chars: int = 40,
        resend_window_s: float = 600.0,
        min_resend_chars: int = 20,
        meter: metrics.Meter | None = None,
    ) -> None:
        """Thresholds default to ``RESTATE_THRESHOLD`` and ``AFTER_FAILURE_THRESHOLD`` (on
        ``text.similarity``) and the text features' ``DUPLICATE_THRESHOLD`` (on the lexical
        sketch). ``review_rule`` maps a kind or a category to the number of its findings that
        flags a conversation (default: each kind's ``review`` in ``kinds.KINDS``). User
        messages shorter than ``min_rephrase_chars`` ("Yes, please.") and answers shorter
        than ``min_loop_chars`` ("Done.") repeat without meaning friction.
        ``resend_window_s`` and ``min_resend_chars``: see ``conversations.py``."""
        self.idle_ns = int(idle_timeout_s * 1e9)
        self.review_rule = K.check_rule(
            K.default_review_rule() if review_rule is None else review_rule
        )
        self.rephrase_threshold = (
            RESTATE_THRESHOLD if rephrase_threshold is None else rephrase_threshold
        )
        self.after_failure_threshold = (
            AFTER_FAILURE_THRESHOLD if after_failure_threshold is None else after_failure_threshold
        )
        self._cue_kinds = tuple(name for name, k in K.KINDS.items() if k.cue)
        self.duplicate_threshold = (
            _text.DUPLICATE_THRESHOLD if duplicate_threshold is None else duplicate_threshold
        )
        self.min_rephrase_chars = min_rephrase_chars
        self.min_loop_chars = min_loop_chars
        self.tracker = ConversationTracker(
            max_conversations=max_conversations,
            resend_window_s=resend_window_s,
            min_resend_chars=min_resend_chars,
        )
        from frictionlens import __version__

        self._scope = InstrumentationScope(semconv.SCOPE_NAME, __version__)
        meter = meter or metrics.get_meter(semconv.SCOPE_NAME, __version__)
        self._events = meter.create_counter(
            semconv.METRIC_FRICTION_EVENTS,
            unit="{finding}",
            description="Friction findings by kind and category",
        )
        self._conversations = meter.create_counter(
            semconv.METRIC_CONVERSATIONS,
            unit="{conversation}",
            description="Conversations ended, by outcome and review flag",
        )

    # -- Stage ---------------------------------------------------------------------------
    def process(self, record: SpanRecord, emit: Emit) -> None:
        get = record.merged().get
        if get(semconv.FEEDBACK_KIND) is not None and record.span.name == semconv.FEEDBACK_SPAN:
            self._feedback(record, get)
        elif get(semconv.GEN_AI_OPERATION_NAME) in semconv.LLM_OPERATIONS:
            self._call(record, get)
        else:
            return
        for conv in self.tracker.overflow():
            emit(self._summary(conv, semconv.CONVERSATION_END_EVICTED))

    def tick(self, now_ns: int, emit: Emit) -> None:
        for conv in self.tracker.expire(now_ns, self.idle_ns):
            emit(self._summary(conv, semconv.CONVERSATION_END_IDLE))

    def close(self, emit: Emit) -> None:
        for conv in self.tracker.drain():
            emit(self._summary(conv, semconv.CONVERSATION_END_SHUTDOWN))

    # -- calls ---------------------------------------------------------------------------
    def _call(self, record: SpanRecord, get: _Get) -> None:
        span = record.span
        feats = record.features
        given = get(semconv.GEN_AI_CONVERSATION_ID)
        output = feats.outputs[0] if feats is not None and feats.outputs else None
        abandoned = bool(get(semconv.STREAM_ABANDONED))
        failed = get(semconv.ERROR_TYPE) is not None or (
            get(semconv.OUTPUT_CHARS) == 0 and not abandoned
        )
        answer = output.digest if output is not None and output.chars and not abandoned else 0
        now = span.end_time or time.time_ns()
        th = self.tracker.thread(
            None if given is None else str(given), feats.messages if feats else (), answer, now
        )
        if th is None:
            return
        conv = th.conv
        after_failure = th.new_user is not None and th.after_failed_answer
        found = self._detect(th, output, abandoned, after_failure)
        self.tracker.record(th, answer, failed, now)
        conv.failed_answer = answer if get(semconv.OUTPUT_NON_ANSWER) else 0
        provider = _name(get(semconv.GEN_AI_PROVIDER_NAME))
        model = _name(get(semconv.GEN_AI_REQUEST_MODEL) or get(semconv.GEN_AI_RESPONSE_MODEL))
        ctx = span.context
        if ctx is not None:
            conv.trace_id, conv.span_id = ctx.trace_id, ctx.span_id
            self.tracker.remember_call(conv, conv.span_id, _str(get(semconv.GEN_AI_RESPONSE_ID)))
        conv.resource, conv.provider, conv.model = span.resource, provider, model
        record.set(semconv.CONVERSATION_ID, conv.key)
        record.set(semconv.CONVERSATION_TURN, th.turn)
        if found:
            found = [k for k in found if self._claim(conv, k, False)]
        user_turn = th.new_user is not None or th.relation in (RESEND, EDIT)
        self._apply(record, conv, found, user_turn, None, after_failure)

    def _detect(
        self, th: Threading, output: TextFeatures | None, abandoned: bool, after_failure: bool
    ) -> list[str]:
        conv = th.conv
        found: list[str] = []
        if th.relation == RESEND:
            found.append(semconv.FRICTION_RETRY if th.entry_failed else semconv.FRICTION_REGENERATE)
        elif th.relation == EDIT:
            found.append(semconv.FRICTION_EDIT)
        user = th.new_user
        if user is not None:
            prev = th.prev_user if th.history.has_answer or th.relation == NEW else conv.last_user
            if th.turn > 1:
                cued = [kind for kind in self._cue_kinds if kind in user.cues]
                if REACTION_CUE in user.cues and not cued and not _asked(th):
                    cued.append(semconv.FRICTION_CORRECTION)
                found += cued
                bar = self.after_failure_threshold if after_failure else self.rephrase_threshold
                if (
                    prev is not None
                    and user.chars >= self.min_rephrase_chars
                    and similarity(user, prev) >= bar
                ):
                    conv.restate_run = max(conv.restate_run, 1) + 1
                    if conv.restate_run >= 3:
                        found.append(semconv.FRICTION_REPEAT)
                    elif not cued:
                        found.append(semconv.FRICTION_REPHRASE)
                else:
                    conv.restate_run = 1
            else:
                conv.restate_run = 1
            conv.last_user = None if th.history.has_answer else _compact(user)
        if abandoned:
            found.append(semconv.FRICTION_STREAM_ABANDON)
        elif output is not None and output.chars >= self.min_loop_chars:
            last = conv.last_answer
            earlier = [a for a in th.prev_answers if last is None or a.digest != last.digest]
            if last is not None:
                earlier.insert(0, last)
            if th.relation == RESEND:  # the answer a regenerate replaces is not an earlier one
                earlier = [a for a in earlier if a.digest != th.entry_answer]
            # near-duplicates share most shingles, so their lengths are close: skip the rest
            low = output.chars * self.duplicate_threshold / 2
            high = output.chars / self.duplicate_threshold * 2
            if any(low <= a.chars <= high and self._duplicate(output, a) for a in earlier):
                found.append(semconv.FRICTION_LOOP)
            conv.last_answer = _compact(output)
        return found

    def _duplicate(self, a: TextFeatures, b: TextFeatures) -> bool:
        """Near-duplicate texts: lexical on purpose (embeddings rate distinct answers on one topic alike)."""
        return (
            a.digest == b.digest
            or sketch_similarity(a.sketch, b.sketch) >= self.duplicate_threshold
        )

    # -- feedback ------------------------------------------------------------------------
    def _feedback(self, record: SpanRecord, get: _Get) -> None:
        kind = str(get(semconv.FEEDBACK_KIND))
        given = _str(get(semconv.FEEDBACK_CONVERSATION_ID))
        response_id = _str(get(semconv.FEEDBACK_RESPONSE_ID))
        conv = self.tracker.get(given) if given else None
        if conv is None:
            links = record.span.links or ()
            conv = self.tracker.by_call(links[0].context.span_id if links else None, response_id)
        if conv is not None:
            self.tracker.touch(conv, record.span.end_time or time.time_ns())
            record.set(semconv.CONVERSATION_ID, conv.key)
            record.set(semconv.CONVERSATION_TURN, conv.turn)
        elif given:
            record.set(semconv.CONVERSATION_ID, given)
        friction = friction_of(kind, get(semconv.FEEDBACK_VALUE))
        if friction is None:
            if conv is not None and (kind in _POSITIVE_FEEDBACK or kind == semconv.FEEDBACK_RATING):
                conv.positive += 1
            return
        found = [friction] if conv is None or self._claim(conv, friction, True) else []
        # a user who says the answer was bad has said it: review, whatever the rule
        strong = friction == semconv.FRICTION_NEGATIVE_FEEDBACK
        self._apply(record, conv, found, False, response_id, strong)

    @staticmethod
    def _claim(conv: Conversation, kind: str, from_feedback: bool) -> bool:
        """Whether a finding counts: a regenerate or edit reported twice (feedback and history) counts once."""
        if kind not in (semconv.FRICTION_REGENERATE, semconv.FRICTION_EDIT):
            return True
        claim = conv.claim
        if (
            claim is not None
            and claim[0] == kind
            and claim[1] != from_feedback
            and claim[2] == conv.turn
        ):
            conv.claim = None
            return False
        conv.claim = (kind, from_feedback, conv.turn)
        return True

    # -- findings ------------------------------------------------------------------------
    def _apply(
        self,
        record: SpanRecord,
        conv: Conversation | None,
        found: list[str],
        user_turn: bool,
        response_id: str | None,
        strong: bool = False,
    ) -> None:
        """Put findings on the span, into the conversation, and into the metric.

        ``strong``: the findings need review at once, whatever the rule (a reaction to an
        answer that failed, explicit negative feedback)."""
        kinds = K.KINDS
        if any(k not in kinds for k in found):  # a kind taken out of the table
            found = [k for k in found if k in kinds]
        if found:
            first = K.primary(found)
            record.set(semconv.FRICTION_KIND, first)
            record.set(semconv.FRICTION_CATEGORY, K.KINDS[first].category)
            for kind in found:
                record.add_event(semconv.GEN_AI_EVALUATION_RESULT, _evaluation(kind, response_id))
        record.set(semconv.FRICTION_SCORE, K.combine(0.0, found))
        if conv is None:
            reason = self._crossing(_counts(found), found, strong)
        else:
            self._count(conv, found, strong)
            if found or user_turn:
                conv.outcome = next((K.KINDS[k].outcome for k in found if K.KINDS[k].outcome), None)
                conv.open_friction = bool(found) and conv.outcome is None
            reason = conv.review_reason
        record.set(semconv.REVIEW_NEEDED, reason is not None)
        if reason is not None:
            record.set(semconv.REVIEW_REASON, reason)
        for kind in found:
            self._count_event(kind, conv)

    def _count_event(self, kind: str, conv: Conversation | None) -> None:
        self._events.add(
            1,
            {
                semconv.METRIC_ATTR_KIND: kind,
                semconv.METRIC_ATTR_CATEGORY: K.KINDS[kind].category,
                semconv.METRIC_ATTR_PROVIDER: (conv.provider if conv else None) or "",
                semconv.METRIC_ATTR_MODEL: (conv.model if conv else None) or "",
            },
        )

    def _count(self, conv: Conversation, found: list[str], strong: bool = False) -> None:
        """Add findings to the conversation: counts, score, and the review flag once crossed."""
        if not found:
            return
        counts = conv.counts
        if counts is None:
            counts = conv.counts = {}
        for kind in found:
            counts[kind] = counts.get(kind, 0) + 1
        conv.score = K.combine(conv.score, found)
        if conv.review_reason is None:
            conv.review_reason = self._crossing(counts, found, strong)

    def _crossing(self, counts: Mapping[str, int], found: list[str], strong: bool) -> str | None:
        """``category:kind`` when the conversation needs review (``kinds.py``), else None."""
        if strong and found:
            kind = K.primary(found)
            return f"{K.KINDS[kind].category}:{kind}"
        return K.crossing(self.review_rule, counts, found)

    # -- conversation end ----------------------------------------------------------------
    def _summary(self, conv: Conversation, reason: str) -> ReadableSpan:
        """The ``frictionlens.conversation`` span of an ended conversation."""
        events: list[Event] = []
        end = conv.last_ns
        if reason == semconv.CONVERSATION_END_IDLE and conv.open_friction:
            found = [semconv.FRICTION_SILENCE]
            self._count(conv, found)
            conv.outcome = K.KINDS[semconv.FRICTION_SILENCE].outcome
            events.append(
                Event(
                    semconv.GEN_AI_EVALUATION_RESULT,
                    _evaluation(semconv.FRICTION_SILENCE, None),
                    end,
                )
            )
            self._count_event(semconv.FRICTION_SILENCE, conv)
        counts = conv.counts or {}
        if not counts:
            outcome = semconv.CONVERSATION_OUTCOME_SMOOTH
        else:
            outcome = conv.outcome or semconv.CONVERSATION_OUTCOME_RECOVERED
        review = conv.review_reason is not None
        attrs: dict[str, AttributeValue] = {
            semconv.CONVERSATION_ID: conv.key,
            semconv.CONVERSATION_TURNS: conv.turns,
            semconv.CONVERSATION_CALLS: conv.calls,
            semconv.FRICTION_SCORE: conv.score,
            semconv.CONVERSATION_OUTCOME: outcome,
            semconv.CONVERSATION_END_REASON: reason,
            semconv.REVIEW_NEEDED: review,
        }
        if conv.explicit:
            attrs[semconv.GEN_AI_CONVERSATION_ID] = conv.key
        if conv.review_reason is not None:
            attrs[semconv.REVIEW_REASON] = conv.review_reason
        if conv.provider:
            attrs[semconv.GEN_AI_PROVIDER_NAME] = conv.provider
        if conv.model:
            attrs[semconv.GEN_AI_REQUEST_MODEL] = conv.model
        if conv.positive:
            attrs[semconv.CONVERSATION_FEEDBACK_POSITIVE] = conv.positive
        for kind, count in counts.items():
            attrs[semconv.CONVERSATION_FRICTION_PREFIX + kind] = count
        self._conversations.add(
            1, {semconv.METRIC_ATTR_OUTCOME: outcome, semconv.METRIC_ATTR_REVIEW_NEEDED: review}
        )
        last = SpanContext(conv.trace_id, conv.span_id, False, _SAMPLED)
        return ReadableSpan(
            name=semconv.CONVERSATION_SPAN,
            context=SpanContext(conv.trace_id, _ids.generate_span_id(), False, _SAMPLED),
            parent=last,
            resource=conv.resource
            or _EMPTY_RESOURCE,  # (without one the SDK would detect one, slowly)
            attributes=attrs,
            events=events,
            links=(Link(last),),
            kind=SpanKind.INTERNAL,
            start_time=conv.first_ns,
            end_time=end,
            instrumentation_scope=self._scope,
        )


def _asked(th: Threading) -> bool:
    """The answer before the new user message asked the user something (history resent)."""
    return bool(th.prev_answers) and ASKS_CUE in th.prev_answers[0].cues


def _compact(text: TextFeatures) -> TextFeatures:
    """What the conversation keeps of a text: the sketch packed into bytes (one per bin)."""
    if isinstance(text.sketch, bytes):
        return text
    return TextFeatures(text.digest, text.chars, bytes(text.sketch), frozenset(), text.embedding)


def _evaluation(kind: str, response_id: str | None) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        semconv.GEN_AI_EVALUATION_NAME: semconv.EVALUATION_FRICTION,
        semconv.GEN_AI_EVALUATION_SCORE_VALUE: K.KINDS[kind].weight,
        semconv.GEN_AI_EVALUATION_SCORE_LABEL: kind,
    }
    if response_id:
        attrs[semconv.GEN_AI_RESPONSE_ID] = response_id
    return attrs


def _counts(found: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in found:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _name(value: object) -> str | None:
    """Provider / model names are few: share one string object per name across conversations."""
    return None if value is None else sys.intern(str(value))
