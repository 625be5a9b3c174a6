"""Context the app sets around its calls (session, route) and the latest call seen.

Plain contextvars, so they follow threads that copy context and every asyncio task.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionInfo:
    conversation_id: str
    user_id: str | None = None
    route: str | None = None


@dataclass(frozen=True, slots=True)
class CallRef:
    """Identifies one instrumented LLM call, so later feedback can point at it."""

    trace_id: int
    span_id: int
    response_id: str | None = None
    conversation_id: str | None = None


current_session: contextvars.ContextVar[SessionInfo | None] = contextvars.ContextVar(
    "frictionlens_session", default=None
)
last_call: contextvars.ContextVar[CallRef | None] = contextvars.ContextVar(
    "frictionlens_last_call", default=None
)
