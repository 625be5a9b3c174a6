"""Friction kinds: the one table that says what each kind is and what it does.

Every part that needs a fact about a kind reads ``KINDS``: the friction stage (score,
primary kind, review, conversation outcome, cues), the alert rules (a kind's own alert), the
reports, the review app. Adding a kind is one ``add()`` (plus its detector, or its phrases
in ``data/cues_*.txt`` when a cue of the same name finds it); ``remove()`` takes one out.

Score. Each kind has a weight ``w`` in (0, 1): how strongly one finding of it says the
answer failed the user. Findings combine as a noisy-OR,

    score = 1 - prod(1 - w_i)   over the findings i

on a call (its own findings) and on a conversation (every finding so far, each counted).
A call or conversation without findings scores 0; the score only grows with more friction
and stays below 1, so it sorts conversations for review without a cut-off of its own.

Primary kind. A call may show several kinds (a third restatement that also says "no, I
meant…" is ``correction`` and ``repeat``). ``frictionlens.friction.kind`` carries the one
with the highest weight (ties: the order of ``KINDS``); every finding is still emitted as
a ``gen_ai.evaluation.result`` event and counted in the conversation.

Review. Each kind says how many of its findings put a conversation up for review
(``review``; 1: at once). One weak restatement or one near-duplicate answer is common in
conversations that went fine, so those need two; an explicit "no, that's not what I asked",
negative feedback or giving up flag at once. A finding right after an answer that failed
(``frictionlens.output.non_answer``) flags at once whatever its kind: the answer failed and
the user reacted to it; so does explicit negative feedback (``frictionlens.feedback``), as
the user has said so. ``FrictionStage(review_rule=...)`` replaces the rule: a mapping from
kind (findings of that kind) or category (findings of its kinds, pooled) to a count.

Outcome. A kind may imply how a conversation ended (``outcome``): a conversation whose last
turn with friction shows a disengagement kind ended ``abandoned``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from frictionlens import semconv
from frictionlens.features.text import CUE_KINDS

CATEGORIES = (
    semconv.CATEGORY_MISALIGNMENT,
    semconv.CATEGORY_STAGNATION,
    semconv.CATEGORY_DISENGAGEMENT,
)


@dataclass(frozen=True, slots=True)
class Kind:
    """What one friction kind is and what a finding of it does."""

    category: str
    """``misalignment``, ``stagnation`` or ``disengagement``"""
    weight: float
    """one finding's weight in the noisy-OR score, in (0, 1)"""
    review: int = 1
    """findings of this kind that put the conversation up for review (1: at once)"""
    outcome: str | None = None
    """the conversation outcome it implies when the last friction shows it (``abandoned``)"""
    cue: bool = False
    """found by the cue of the same name in a user message (``data/cues_*.txt``)"""
    alert: float | None = None
    """``frictionlens rules`` alerts (``friction_<kind>``) when more than this share of LLM
    calls show the kind; None: no alert of its own (the friction-rate alert covers all)"""


_ABANDONED = semconv.CONVERSATION_OUTCOME_ABANDONED
_MIS, _STAG, _DIS = CATEGORIES

#: every kind, in tie-break order for the primary kind
KINDS: dict[str, Kind] = {
    semconv.FRICTION_GIVE_UP: Kind(_DIS, 0.9, outcome=_ABANDONED, cue=True),
    semconv.FRICTION_NEGATIVE_FEEDBACK: Kind(_MIS, 0.8, cue=True),
    semconv.FRICTION_CORRECTION: Kind(_MIS, 0.7, cue=True),
    semconv.FRICTION_REPEAT: Kind(_STAG, 0.6),
    semconv.FRICTION_EDIT: Kind(_MIS, 0.5),
    semconv.FRICTION_REGENERATE: Kind(_MIS, 0.5),
    semconv.FRICTION_LOOP: Kind(_STAG, 0.5, review=2),
    semconv.FRICTION_REPHRASE: Kind(_MIS, 0.4, review=2),
    semconv.FRICTION_STREAM_ABANDON: Kind(_DIS, 0.4, outcome=_ABANDONED),
    semconv.FRICTION_RETRY: Kind(_MIS, 0.3, review=2),
    semconv.FRICTION_SILENCE: Kind(_DIS, 0.3, outcome=_ABANDONED),
}

_order: dict[str, int] = {}


def _reorder() -> None:
    _order.clear()
    _order.update((name, i) for i, name in enumerate(KINDS))


_reorder()


def add(name: str, kind: Kind) -> None:
    """Add (or redefine) a kind; stages built afterwards use it. Checks it first."""
    if kind.category not in CATEGORIES:
        raise ValueError(f"unknown friction category {kind.category!r}; use {list(CATEGORIES)}")
    if not 0.0 < kind.weight < 1.0:
        raise ValueError(f"weight of {name!r} must be in (0, 1)")
    if not isinstance(kind.review, int) or kind.review < 1:
        raise ValueError(f"review count of {name!r} must be an int >= 1")
    if kind.cue and name not in CUE_KINDS:
        raise ValueError(f"no cue named {name!r}; cues: {list(CUE_KINDS)}")
    if kind.alert is not None and not 0.0 <= kind.alert < 1.0:
        raise ValueError(f"alert share of {name!r} must be in [0, 1)")
    KINDS[name] = kind
    _reorder()


def remove(name: str) -> None:
    """Take a kind out (its detector then finds nothing that is reported)."""
    del KINDS[name]
    _reorder()


def category(kind: str) -> str | None:
    """The category of ``kind``; None for a kind not in the table."""
    k = KINDS.get(kind)
    return None if k is None else k.category


def primary(kinds: Iterable[str]) -> str:
    """The kind reported in ``frictionlens.friction.kind`` (see the module docstring)."""
    return min(kinds, key=lambda k: (-KINDS[k].weight, _order[k]))


def combine(score: float, kinds: Iterable[str]) -> float:
    """``score`` after adding findings of ``kinds`` (noisy-OR; start from 0.0)."""
    keep = 1.0 - score
    for kind in kinds:
        keep *= 1.0 - KINDS[kind].weight
    return 1.0 - keep


def default_review_rule() -> dict[str, int]:
    """Kind -> findings that flag a conversation, from the table."""
    return {name: k.review for name, k in KINDS.items()}


def check_rule(rule: Mapping[str, int]) -> dict[str, int]:
    """A validated copy of a review rule (keys: kinds or categories; counts >= 1)."""
    out = dict(rule)
    for key, count in out.items():
        if key not in KINDS and key not in CATEGORIES:
            raise ValueError(
                f"unknown friction kind or category {key!r} in review rule; "
                f"use one of {sorted(KINDS)} or {list(CATEGORIES)}"
            )
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"review rule count for {key!r} must be an int >= 1")
    return out


def crossing(rule: Mapping[str, int], counts: Mapping[str, int], found: list[str]) -> str | None:
    """``category:kind`` when ``counts`` meet ``rule``, the kind being the latest finding that did."""
    for kind in reversed(found):
        cat = KINDS[kind].category
        need = rule.get(kind)
        if need is not None and counts.get(kind, 0) >= need:
            return f"{cat}:{kind}"
        need = rule.get(cat)
        if need is not None and sum(n for k, n in counts.items() if category(k) == cat) >= need:
            return f"{cat}:{kind}"
    return None
