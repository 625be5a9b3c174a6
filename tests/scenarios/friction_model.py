"""Chat conversations as data, and the chat app that plays them through a driver.

A scenario is what a user did in one conversation: say something, regenerate the last
answer, edit their last message, hit an error and retry, stop a stream, give feedback;
each step is labelled with the friction kinds the span it produces must show. ``steps()``
is the app: it keeps the history (or not, for a stateless app), makes each LLM call through
the ``Driver`` and reports feedback. A driver decides how a call happens: spans built
directly (``friction_spans.SpanDriver``), or the real OpenAI SDK against a server that
answers with the scripted text.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan

# step actions
SAY = "say"
REGENERATE = "regenerate"
EDIT = "edit"
ERROR = "error"  # the user's message gets an error instead of an answer
RETRY = "retry"  # the same request again
ABANDON = "abandon"  # the user stops the stream; ``assistant`` is the part shown
FEEDBACK = "feedback"

# how the app sends conversations
HISTORY = "history"  # whole history resent, no session id: the conversation is inferred
SESSION = "session"  # whole history resent inside frictionlens.session(id)
STATELESS = "stateless"  # only the latest message, inside frictionlens.session(id)

# how a conversation ends
IDLE = "idle"
CLOSE = "close"


@dataclass(frozen=True)
class Step:
    action: str
    user: str = ""
    assistant: str = ""
    feedback: str | float | None = None
    expect: frozenset[str] = frozenset()
    """friction kinds the span of this step must show (and no others)"""


@dataclass(frozen=True)
class Scenario:
    name: str
    lang: str
    steps: tuple[Step, ...]
    mode: str = HISTORY
    end: str = IDLE
    end_expect: frozenset[str] = frozenset()
    """kinds the conversation summary must add (``silence``)"""
    system: str = "You are a helpful assistant."
    note: str = ""
    """what the scenario tests (hard negatives say why they must stay silent)"""
    tags: frozenset[str] = field(default=frozenset())

    @property
    def expected_kinds(self) -> list[str]:
        return [k for s in self.steps for k in s.expect] + list(self.end_expect)


def say(user: str, assistant: str, *expect: str) -> Step:
    return Step(SAY, user, assistant, expect=frozenset(expect))


def regenerate(assistant: str, *expect: str) -> Step:
    return Step(REGENERATE, assistant=assistant, expect=frozenset(expect or ("regenerate",)))


def edit(user: str, assistant: str, *expect: str) -> Step:
    return Step(EDIT, user, assistant, expect=frozenset(expect or ("edit",)))


def error(user: str) -> Step:
    return Step(ERROR, user)


def retry(assistant: str, *expect: str) -> Step:
    return Step(RETRY, assistant=assistant, expect=frozenset(expect or ("retry",)))


def abandon(user: str, partial: str, *expect: str) -> Step:
    return Step(ABANDON, user, partial, expect=frozenset(expect or ("stream_abandon",)))


def feedback(kind: str | float, *expect: str) -> Step:
    return Step(FEEDBACK, feedback=kind, expect=frozenset(expect))


class Driver(Protocol):
    """Makes the calls of a chat app and collects what gets exported."""

    def call(
        self,
        messages: list[tuple[str, str]],
        answer: str,
        *,
        conversation_id: str | None,
        fail: bool = False,
        abandon: bool = False,
    ) -> int:
        """One chat completion returning ``answer`` (or failing / streamed and stopped);
        returns the span id of the call's span."""

    def feedback(self, kind: str | float) -> int:
        """``frictionlens.feedback(kind)`` about the latest call in this context; returns the
        feedback span's id."""

    def pause(self, seconds: float) -> None:
        """Time passes (the user reads, types)."""

    def finish(self, end: str) -> list[ReadableSpan]:
        """End every conversation (``IDLE``: the idle timeout passes; ``CLOSE``: shutdown)
        and return every exported span."""


def steps(scenario: Scenario, driver: Driver, think_s: float = 20.0) -> Iterator[tuple[Step, int]]:
    """The chat app: plays ``scenario`` through ``driver``, yielding each step and its span id.

    Each scenario runs in its own context (as each user's requests do in an app), so that
    ``feedback()`` finds that user's latest call even when scenarios interleave.
    """
    ctx = contextvars.copy_context()
    system = ("system", scenario.system)
    history: list[tuple[str, str]] = []
    pending: list[tuple[str, str]] = []  # what the last request sent (for regenerate / retry)
    conversation_id = None if scenario.mode == HISTORY else f"conv-{scenario.name}"
    for step in scenario.steps:
        driver.pause(think_s)
        if step.action == FEEDBACK:
            assert step.feedback is not None
            yield step, ctx.run(driver.feedback, step.feedback)
            continue
        fail = step.action == ERROR
        if step.action in (SAY, ERROR, ABANDON):
            history.append(("user", step.user))
        elif step.action == EDIT:
            history = history[:-2] + [("user", step.user)]
        elif step.action == REGENERATE:
            history = history[:-1]
        if scenario.mode == STATELESS:
            sent = [system, history[-1]]
        else:
            sent = [system, *history]
        if step.action == RETRY:
            sent = pending
        pending = sent
        span_id = ctx.run(
            driver.call,
            sent,
            step.assistant,
            conversation_id=conversation_id,
            fail=fail,
            abandon=step.action == ABANDON,
        )
        if not fail:
            history.append(("assistant", step.assistant))
        yield step, span_id


def play(scenario: Scenario, driver: Driver) -> tuple[list[tuple[Step, int]], list[ReadableSpan]]:
    """Every step of ``scenario`` with its span id, and the exported spans."""
    done = list(steps(scenario, driver))
    return done, driver.finish(scenario.end)
