"""Friction kinds, their categories and weights, the score formula and the review rule.

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

Review rule. A mapping category -> number of findings of that category that puts the
conversation up for review. The default flags any misalignment or disengagement finding,
or two stagnation findings; a conversation without findings is never flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from frictionlens import semconv

#: every kind, in tie-break order for the primary kind
KINDS: tuple[str, ...] = (
    semconv.FRICTION_GIVE_UP,
    semconv.FRICTION_NEGATIVE_FEEDBACK,
    semconv.FRICTION_CORRECTION,
    semconv.FRICTION_REPEAT,
    semconv.FRICTION_EDIT,
    semconv.FRICTION_REGENERATE,
    semconv.FRICTION_LOOP,
    semconv.FRICTION_REPHRASE,
    semconv.FRICTION_STREAM_ABANDON,
    semconv.FRICTION_RETRY,
    semconv.FRICTION_SILENCE,
)

CATEGORY: Mapping[str, str] = {
    semconv.FRICTION_RETRY: semconv.CATEGORY_MISALIGNMENT,
    semconv.FRICTION_REGENERATE: semconv.CATEGORY_MISALIGNMENT,
    semconv.FRICTION_EDIT: semconv.CATEGORY_MISALIGNMENT,
    semconv.FRICTION_REPHRASE: semconv.CATEGORY_MISALIGNMENT,
    semconv.FRICTION_CORRECTION: semconv.CATEGORY_MISALIGNMENT,
    semconv.FRICTION_NEGATIVE_FEEDBACK: semconv.CATEGORY_MISALIGNMENT,
    semconv.FRICTION_REPEAT: semconv.CATEGORY_STAGNATION,
    semconv.FRICTION_LOOP: semconv.CATEGORY_STAGNATION,
    semconv.FRICTION_STREAM_ABANDON: semconv.CATEGORY_DISENGAGEMENT,
    semconv.FRICTION_GIVE_UP: semconv.CATEGORY_DISENGAGEMENT,
    semconv.FRICTION_SILENCE: semconv.CATEGORY_DISENGAGEMENT,
}

#: one finding's weight in the noisy-OR score
WEIGHT: Mapping[str, float] = {
    semconv.FRICTION_GIVE_UP: 0.9,
    semconv.FRICTION_NEGATIVE_FEEDBACK: 0.8,
    semconv.FRICTION_CORRECTION: 0.7,
    semconv.FRICTION_REPEAT: 0.6,
    semconv.FRICTION_EDIT: 0.5,
    semconv.FRICTION_REGENERATE: 0.5,
    semconv.FRICTION_LOOP: 0.5,
    semconv.FRICTION_REPHRASE: 0.4,
    semconv.FRICTION_STREAM_ABANDON: 0.4,
    semconv.FRICTION_RETRY: 0.3,
    semconv.FRICTION_SILENCE: 0.3,
}

#: kind -> its index in per-conversation count arrays
INDEX: Mapping[str, int] = {k: i for i, k in enumerate(KINDS)}

DEFAULT_REVIEW_RULE: Mapping[str, int] = {
    semconv.CATEGORY_MISALIGNMENT: 1,
    semconv.CATEGORY_DISENGAGEMENT: 1,
    semconv.CATEGORY_STAGNATION: 2,
}


def primary(kinds: Iterable[str]) -> str:
    """The kind reported in ``frictionlens.friction.kind`` (see the module docstring)."""
    return min(kinds, key=INDEX.__getitem__)


def combine(score: float, kinds: Iterable[str]) -> float:
    """``score`` after adding findings of ``kinds`` (noisy-OR; start from 0.0)."""
    keep = 1.0 - score
    for kind in kinds:
        keep *= 1.0 - WEIGHT[kind]
    return 1.0 - keep


def check_rule(rule: Mapping[str, int]) -> dict[str, int]:
    """A validated copy of a review rule (unknown categories or counts < 1 are an error)."""
    known = {
        semconv.CATEGORY_MISALIGNMENT,
        semconv.CATEGORY_STAGNATION,
        semconv.CATEGORY_DISENGAGEMENT,
    }
    out = dict(rule)
    for category, count in out.items():
        if category not in known:
            raise ValueError(
                f"unknown friction category {category!r} in review rule; use {sorted(known)}"
            )
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"review rule count for {category!r} must be an int >= 1")
    return out
