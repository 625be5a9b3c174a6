"""Conversation threading: which conversation and turn an LLM call belongs to.

A given id wins: ``gen_ai.conversation.id`` on the span (``frictionlens.session(...)`` or
another instrumentation) names the conversation. Without one, the conversation is inferred
from the history the app resends, compared as salted message digests only:

* a call whose messages extend an earlier call's messages plus that call's answer
  continues that conversation (a new user turn, or an agent step when only tool results
  were added);
* an identical history resent is a *resend* of that call (retry after a failure,
  regenerate otherwise);
* a history identical up to its last user message, which changed, is an *edit*; so is a
  history with an earlier user message changed (the first one included) that still holds
  answers the conversation gave: the answers say which conversation it is.

Only non-system messages count, so a system prompt that changes per call (dates,
retrieved context) does not break threading. The inferred id is derived from the digests
of the first user message and its answer, so replicas and a collector that share the salt
agree on it without sharing state (within one tracker, an edited first message keeps the
id it had). Limits, by design, without a given id: the only message of a conversation
edited and sent alone looks like a new conversation; a first message resent counts as a
resend only within ``resend_window_s`` and when it has at least ``min_resend_chars``
characters (many users opening with "hi" are not one conversation); two conversations that
open with the same message and get the same answer are one; and an edited history whose
answers are all canned ones other conversations got too goes to the latest of them. Apps
that know their conversations should say so with ``frictionlens.session(id)``.

State is bounded: an LRU of at most ``max_conversations`` conversations, idle ones expiring
through ``expire``; each keeps a ring of its last ``RING`` calls as integers.
"""

from __future__ import annotations

import hashlib
import itertools
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.resources import Resource

from frictionlens import semconv
from frictionlens.features.record import MessageFeatures, TextFeatures
from frictionlens.health import count_eviction

SYSTEM_ROLES = frozenset({"system", "developer"})
_ROLE_CODE = {"user": 1, "assistant": 2, "tool": 3, "function": 3}
_MASK = (1 << 64) - 1
#: hash of the empty history (what precedes a conversation's first message)
EMPTY = 1

# how a call relates to its conversation
NEW = "new"
CONTINUE = "continue"
RESEND = "resend"
EDIT = "edit"

#: calls remembered per conversation: its latest user turns, plus the latest agent step
RING = 3
# ring entry fields: turn, request hash, prefix hash (history before the last user message;
# 0 when the call did not end with a user message), answer digest (0: unknown), failed
_FIELDS = 5
_TURN, _REQ, _PREFIX, _ANSWER, _FAILED = range(_FIELDS)


@dataclass(slots=True)
class History:
    """A call's non-system messages, scanned once."""

    msgs: list[MessageFeatures]
    hashes: list[int]
    """``hashes[k]`` identifies the first ``k`` messages (roles and digests); ``hashes[0] == EMPTY``"""
    users: int
    """user messages among them"""
    has_answer: bool
    """an assistant message among them: the app resends the conversation's history"""
    ends_with_user: bool
    """the last message is a user message"""


#: the history of a call without captured messages (the common case in a collector), shared:
#: a History is only read once scanned
_NO_HISTORY = History([], [EMPTY], 0, False, False)


def scan(messages: Sequence[MessageFeatures]) -> History:
    if not messages:
        return _NO_HISTORY
    msgs = [m for m in messages if m.role not in SYSTEM_ROLES]
    hashes = [EMPTY]
    append = hashes.append
    code = _ROLE_CODE.get
    acc = EMPTY
    for m in msgs:
        acc = hash((acc, code(m.role, 4), m.text.digest)) & _MASK
        append(acc)
    roles = [m.role for m in msgs]
    return History(
        msgs, hashes, roles.count("user"), "assistant" in roles, bool(roles) and roles[-1] == "user"
    )


def inferred_id(first_user: int, first_answer: int) -> str:
    """Conversation id from the salted digests of its first message and first answer."""
    data = first_user.to_bytes(8, "big") + first_answer.to_bytes(8, "big")
    return "i-" + hashlib.blake2b(data, digest_size=8).hexdigest()


class Conversation:
    """Per-conversation state, kept small: ints, the latest texts' features, counters."""

    __slots__ = (
        "key",
        "explicit",
        "first_ns",
        "last_ns",
        "turn",
        "turns",
        "calls",
        "ring",
        "resends_history",
        "last_user",
        "last_answer",
        "restate_run",
        "counts",
        "score",
        "review_reason",
        "open_friction",
        "outcome",
        "failed_answer",
        "positive",
        "claim",
        "trace_id",
        "span_id",
        "resource",
        "provider",
        "model",
    )

    def __init__(self, key: str, explicit: bool, now_ns: int) -> None:
        self.key = key
        self.explicit = explicit
        self.first_ns = now_ns
        self.last_ns = now_ns
        self.turn = 0
        self.turns = 0
        self.calls = 0
        self.ring = array("Q")
        self.resends_history = False
        self.last_user: TextFeatures | None = None
        """the latest user message, for apps that do not resend the history"""
        self.last_answer: TextFeatures | None = None
        self.restate_run = 0
        """consecutive user turns asking the same thing (1 = asked once)"""
        self.counts: dict[str, int] | None = None
        """findings per kind; None until the first finding"""
        self.score = 0.0
        self.review_reason: str | None = None
        """set once the conversation crosses the review rule"""
        self.open_friction = False
        """the latest turn showed friction the user has not moved past (silence -> disengagement)"""
        self.outcome: str | None = None
        """the outcome the latest turn's friction implies (kinds.Kind.outcome)"""
        self.failed_answer = 0
        """digest of the latest answer when it failed its request (output.non_answer), else 0"""
        self.positive = 0
        self.claim: tuple[str, bool, int] | None = None
        """(kind, from feedback?, turn) of the latest regenerate / edit, to count it once"""
        self.trace_id = 0
        self.span_id = 0
        self.resource: Resource | None = None
        self.provider: str | None = None
        self.model: str | None = None

    def entries(self) -> range:
        """Ring entry offsets, newest first."""
        return range(len(self.ring) - _FIELDS, -1, -_FIELDS)


@dataclass(slots=True)
class Threading:
    """Where one call landed: its conversation, how it relates to it, its turn."""

    conv: Conversation
    relation: str
    turn: int
    history: History
    entry: int = -1
    """ring offset of the call this one resends, edits or continues (-1: none)"""
    new_user: TextFeatures | None = None
    """the user message this call adds (new turn)"""
    prev_user: TextFeatures | None = None
    """the user message before it, from the resent history"""
    prev_answers: tuple[TextFeatures, ...] = field(default=())
    """the latest answers in the resent history, newest first"""

    @property
    def entry_failed(self) -> bool:
        """The resent / edited call had failed (error or empty answer)."""
        return self.entry >= 0 and bool(self.conv.ring[self.entry + _FAILED])

    @property
    def entry_answer(self) -> int:
        """Digest of the answer of the call this one resends, edits or continues (0: none)."""
        return self.conv.ring[self.entry + _ANSWER] if self.entry >= 0 else 0

    @property
    def after_failed_answer(self) -> bool:
        """The answer just before this call's user message failed its request."""
        failed = self.conv.failed_answer
        return bool(failed) and (not self.prev_answers or self.prev_answers[0].digest == failed)


class ConversationTracker:
    """Threads calls into conversations: a bounded LRU plus two small indexes."""

    def __init__(
        self,
        *,
        max_conversations: int = 10_000,
        resend_window_s: float = 600.0,
        min_resend_chars: int = 20,
    ) -> None:
        if max_conversations < 1:
            raise ValueError("max_conversations must be >= 1")
        self.max_conversations = max_conversations
        self.resend_window_ns = int(resend_window_s * 1e9)
        self.min_resend_chars = min_resend_chars
        self._convs: OrderedDict[str, Conversation] = OrderedDict()
        self._requests: dict[int, str] = {}
        """request hash -> key, for the ring entries of inferred conversations"""
        self._answers: dict[int, str] = {}
        """answer digest -> key, likewise: a history with an earlier message edited holds them"""
        self._seq = itertools.count(1)
        self._calls: OrderedDict[int, str] = OrderedDict()
        """hash(response id), else span id, of recent calls -> key, so that feedback finds them"""

    def __len__(self) -> int:
        return len(self._convs)

    def get(self, key: str) -> Conversation | None:
        return self._convs.get(key)

    def touch(self, conv: Conversation, now_ns: int) -> None:
        """Activity without a call (feedback): keeps the conversation from idling out."""
        conv.last_ns = max(conv.last_ns, now_ns)
        if conv.key in self._convs:
            self._convs.move_to_end(conv.key)

    # -- threading ---------------------------------------------------------------------
    def thread(
        self, given_id: str | None, messages: Sequence[MessageFeatures], answer: int, now_ns: int
    ) -> Threading | None:
        """The conversation of a call (created when new); None when nothing identifies one.

        ``answer``: digest of the call's output text, 0 when it has none (error, tool calls).
        """
        hist = scan(messages)
        if given_id is not None:
            conv = self._convs.get(given_id) or self._new(given_id, True, now_ns)
            th = self._classify(conv, hist)
        elif not hist.msgs:
            return None
        else:
            found = self._find(hist, now_ns)
            if found is not None:
                th = self._classify(found, hist)
            else:
                key = self._derive_id(hist.msgs, answer)
                if key in self._convs:  # same opening and answer, but not a resend of it
                    key = f"{key}.{next(self._seq)}"
                conv = self._new(key, False, now_ns)
                th = self._threading(conv, NEW, max(1, hist.users), hist, len(hist.msgs))
        self._convs.move_to_end(th.conv.key)
        return th

    def _find(self, hist: History, now_ns: int) -> Conversation | None:
        """The inferred conversation a history belongs to, if any is tracked."""
        msgs, h = hist.msgs, hist.hashes
        n = len(msgs)
        conv = self._by_request(h[n])
        if conv is not None and (
            hist.has_answer
            or (
                now_ns - conv.last_ns <= self.resend_window_ns
                and msgs[-1].text.chars >= self.min_resend_chars
            )
        ):
            return conv
        for k in range(n - 1, 0, -1):
            if msgs[k].role != "assistant":
                continue
            conv = self._by_request(h[k])
            if conv is None:
                continue
            ring = conv.ring
            for at in conv.entries():
                if ring[at + _REQ] == h[k] and ring[at + _ANSWER] in (0, msgs[k].text.digest):
                    return conv
        for m in reversed(msgs):
            if m.role == "assistant":
                key = self._answers.get(m.text.digest)
                if key is not None and key in self._convs:
                    return self._convs[key]
        first = _first_exchange(msgs)
        return None if first is None else self._convs.get(inferred_id(*first))

    def _by_request(self, request: int) -> Conversation | None:
        key = self._requests.get(request)
        return None if key is None else self._convs.get(key)

    def _classify(self, conv: Conversation, hist: History) -> Threading:
        msgs, h = hist.msgs, hist.hashes
        n = len(msgs)
        ends_with_user = hist.ends_with_user
        if n:  # without messages nothing can match a remembered call
            ring = conv.ring
            entries = conv.entries()
            for at in entries:
                if ring[at + _REQ] == h[n]:
                    return self._threading(conv, RESEND, ring[at + _TURN], hist, 0, at)
            if ends_with_user and (n > 1 or conv.resends_history):
                for at in entries:
                    if ring[at + _PREFIX] == h[n - 1]:
                        return self._threading(conv, EDIT, ring[at + _TURN], hist, n - 1, at)
            if n > 1 and entries:
                requests = {ring[at + _REQ]: at for at in entries}
                for k in range(n - 1, 0, -1):
                    at = requests.get(h[k], -1)
                    if at >= 0 and msgs[k].role == "assistant":
                        added = sum(m.role == "user" for m in msgs[k:])
                        return self._threading(
                            conv, CONTINUE, ring[at + _TURN] + added, hist, n, at
                        )
            if ends_with_user and hist.has_answer and entries:
                edited = self._edited(conv, hist)
                if edited is not None:
                    return edited
        # no remembered call matches: a stateless app (only the new message sent), a
        # history the app trimmed, or a call the ring has forgotten
        turn = conv.turn + (1 if ends_with_user or n == 0 else 0)
        return self._threading(conv, CONTINUE, turn, hist, n)

    def _edited(self, conv: Conversation, hist: History) -> Threading | None:
        """An earlier user message changed: the latest answer the history shares with the
        conversation places it; resending a turn already asked is an edit of that turn."""
        msgs, ring = hist.msgs, conv.ring
        answers = {ring[at + _ANSWER]: at for at in conv.entries() if ring[at + _ANSWER]}
        for k in range(len(msgs) - 1, -1, -1):
            at = answers.get(msgs[k].text.digest, -1) if msgs[k].role == "assistant" else -1
            if at < 0:
                continue
            turn = ring[at + _TURN] + sum(m.role == "user" for m in msgs[k:])
            for same in conv.entries():
                if ring[same + _TURN] == turn:
                    return self._threading(conv, EDIT, turn, hist, len(msgs) - 1, same)
            return self._threading(conv, CONTINUE, turn, hist, len(msgs), at)
        return None

    @staticmethod
    def _threading(
        conv: Conversation, relation: str, turn: int, hist: History, upto: int, entry: int = -1
    ) -> Threading:
        """A Threading with the texts the detectors compare, read from the resent history."""
        msgs = hist.msgs
        th = Threading(conv, relation, turn, hist, entry)
        if upto == len(msgs) and hist.ends_with_user:
            th.new_user = msgs[-1].text
            upto -= 1
        answers: list[TextFeatures] = []
        for i in range(upto - 1, -1, -1):
            m = msgs[i]
            if m.role == "user":
                if th.prev_user is None:
                    th.prev_user = m.text
                    if len(answers) == 2:
                        break
            elif m.role == "assistant" and len(answers) < 2:
                answers.append(m.text)
                if len(answers) == 2 and th.prev_user is not None:
                    break
        th.prev_answers = tuple(answers)
        return th

    def _derive_id(self, msgs: list[MessageFeatures], answer: int) -> str:
        first = _first_exchange(msgs)
        if first is not None:
            return inferred_id(*first)
        user = next((m.text.digest for m in msgs if m.role == "user"), msgs[0].text.digest)
        return inferred_id(user, answer)

    def _new(self, key: str, explicit: bool, now_ns: int) -> Conversation:
        conv = Conversation(key, explicit, now_ns)
        self._convs[key] = conv
        return conv

    # -- after detection -----------------------------------------------------------------
    def record(self, th: Threading, answer: int, failed: bool, now_ns: int) -> None:
        """Remember the call in its conversation's ring (and the request index)."""
        conv, hist = th.conv, th.history
        h = hist.hashes
        n = len(h) - 1
        conv.calls += 1
        conv.last_ns = max(conv.last_ns, now_ns)
        conv.turn = th.turn
        conv.turns = max(conv.turns, th.turn)
        conv.resends_history = conv.resends_history or hist.has_answer
        ring = conv.ring
        ends_with_user = hist.ends_with_user
        if th.relation in (RESEND, EDIT):
            at = th.entry
            self._truncate(conv, at + _FIELDS)
            self._unindex(conv, at)
            ring[at + _REQ] = h[n]
            ring[at + _PREFIX] = h[n - 1] if ends_with_user else 0
            ring[at + _ANSWER] = answer
            ring[at + _FAILED] = int(failed)
            self._index(conv, at)
            return
        if th.entry >= 0:
            self._truncate(conv, th.entry + _FIELDS)  # a branch from an older call
        last = len(ring) - _FIELDS
        if last >= 0 and ring[last + _PREFIX] == 0 and not ends_with_user:
            self._truncate(conv, last)  # keep only the latest agent step
        ring.extend((th.turn, h[n], h[n - 1] if ends_with_user else 0, answer, int(failed)))
        while len(ring) > RING * _FIELDS:
            self._unindex(conv, 0)
            del ring[:_FIELDS]
        self._index(conv, len(ring) - _FIELDS)

    def _truncate(self, conv: Conversation, at: int) -> None:
        ring = conv.ring
        if not conv.explicit:  # only inferred conversations are indexed
            for off in range(at, len(ring), _FIELDS):
                self._unindex(conv, off)
        del ring[at:]

    def _index(self, conv: Conversation, at: int) -> None:
        """Index the ring entry at ``at`` by its request and answer (inferred conversations)."""
        if not conv.explicit:
            self._requests[conv.ring[at + _REQ]] = conv.key
            if conv.ring[at + _ANSWER]:
                self._answers[conv.ring[at + _ANSWER]] = conv.key

    def _unindex(self, conv: Conversation, at: int) -> None:
        if conv.explicit:
            return
        for index, value in (
            (self._requests, conv.ring[at + _REQ]),
            (self._answers, conv.ring[at + _ANSWER]),
        ):
            if index.get(value) == conv.key:
                del index[value]

    # -- calls, for feedback -------------------------------------------------------------
    def remember_call(self, conv: Conversation, span_id: int, response_id: str | None) -> None:
        """Feedback names a call by its response id (its link to the call span carries it too)."""
        calls = self._calls
        calls[hash(response_id) if response_id else span_id] = conv.key
        while len(calls) > 2 * self.max_conversations:
            calls.popitem(last=False)
            count_eviction("calls", semconv.EVICTED_CAP)

    def by_call(self, span_id: int | None, response_id: str | None) -> Conversation | None:
        """The conversation of a recent call, by its response id, else its span id."""
        key = self._calls.get(hash(response_id)) if response_id else None
        if key is None and span_id:
            key = self._calls.get(span_id)
        return None if key is None else self._convs.get(key)

    # -- ending --------------------------------------------------------------------------
    def overflow(self) -> list[Conversation]:
        """The least recently used conversations beyond the cap, removed."""
        out = []
        while len(self._convs) > self.max_conversations:
            out.append(self._remove(next(iter(self._convs))))
        if out:
            count_eviction("conversations", semconv.EVICTED_CAP, len(out))
        return out

    def expire(self, now_ns: int, idle_ns: int) -> list[Conversation]:
        """Conversations idle for ``idle_ns`` or longer, removed; oldest first.

        The LRU order is the order calls were seen, so the scan stops at the first
        conversation still active.
        """
        out = []
        while self._convs:
            conv = next(iter(self._convs.values()))
            if now_ns - conv.last_ns < idle_ns:
                break
            out.append(self._remove(conv.key))
        return out

    def drain(self) -> list[Conversation]:
        """Every conversation, removed."""
        return [self._remove(key) for key in list(self._convs)]

    def _remove(self, key: str) -> Conversation:
        conv = self._convs.pop(key)
        self._truncate(conv, 0)
        return conv


def _first_exchange(msgs: Sequence[MessageFeatures]) -> tuple[int, int] | None:
    """Digests of the first user message and the first answer after it, if the history has both."""
    user = None
    for m in msgs:
        if user is None and m.role == "user":
            user = m.text.digest
        elif user is not None and m.role == "assistant":
            return user, m.text.digest
    return None
