"""frictionlens: see LLM apps the way their users experience them.

One line, ``frictionlens.instrument()``, wraps the LLM SDKs with OpenTelemetry and derives
friction, drift and trajectory signals from every call, exported to any OTLP backend or to
the local store that ``frictionlens report`` reads.
"""

from __future__ import annotations

from typing import Any

from frictionlens.context import SessionInfo, current_session
from frictionlens.feedback import feedback
from frictionlens.tasks import TaskHandle, task, tool

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "instrument",
    "uninstrument",
    "session",
    "task",
    "tool",
    "TaskHandle",
    "feedback",
]


def instrument(**options: Any) -> None:
    """Instrument every supported LLM SDK and install the signal pipeline. Idempotent.

    Options (each also read from ``FRICTIONLENS_<NAME>``; see ``frictionlens.config.Options``):
    ``exporter``, ``data_dir``, ``providers``, ``salt``, ``capture_content``,
    ``content_max_chars``, ``conversation_timeout_s``, ``sample_rate``, ``drift_arl``,
    ``disabled``. ``tracer_provider`` / ``meter_provider`` use the given SDK providers
    instead of the global ones.
    """
    from frictionlens import runtime

    runtime.install(**options)


def uninstrument() -> None:
    """Remove the wrappers, close open conversations, flush all telemetry."""
    from frictionlens import runtime

    runtime.uninstall()


class session:  # noqa: N801 - used like a function: ``with frictionlens.session("c1"):``
    """Calls inside belong to this conversation (``gen_ai.conversation.id``). Sync and async."""

    def __init__(
        self, conversation_id: str, *, user_id: str | None = None, route: str | None = None
    ) -> None:
        if not conversation_id:
            raise ValueError("conversation_id must be a non-empty string")
        self.info = SessionInfo(str(conversation_id), user_id, route)
        self._tokens: list[Any] = []

    def __enter__(self) -> SessionInfo:
        self._tokens.append(current_session.set(self.info))
        return self.info

    def __exit__(self, *exc: object) -> None:
        current_session.reset(self._tokens.pop())

    async def __aenter__(self) -> SessionInfo:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)
