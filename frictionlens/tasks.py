"""Agent tasks and tool runs as GenAI spans, so their trajectory can be measured.

``task()`` opens the task's root span (``invoke_agent {name}``) and lets the app say how
the task ended; every LLM call, tool run and nested task inside it belongs to the task.
``tool()`` wraps the app's own tool code in an ``execute_tool {name}`` span, so tool
errors are seen even when the model never learns of them. Both are context managers for
``with`` and ``async with``; exceptions pass through unchanged, and a failure of the
telemetry itself is counted and never reaches the app.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from frictionlens import semconv
from frictionlens.health import count_internal_error
from frictionlens.instrumentation.telemetry import record_exception

_log = logging.getLogger(__name__)


def _tracer() -> trace.Tracer:
    from frictionlens import runtime

    return runtime.tracer()


def _open(name: str, attributes: dict[str, Any], component: str) -> tuple[Span, object | None]:
    try:
        span = _tracer().start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        return span, context.attach(trace.set_span_in_context(span))
    except Exception:
        count_internal_error(component)
        _log.debug("opening %s failed", name, exc_info=True)
        return INVALID_SPAN, None


def _close(span: Span, token: object | None, component: str) -> None:
    try:
        if token is not None:
            context.detach(token)  # type: ignore[arg-type]
        span.end()
    except Exception:
        count_internal_error(component)
        _log.debug("closing a span failed", exc_info=True)


def _record_error(span: Span, error_type: str, exc: BaseException | None) -> None:
    span.set_attribute(semconv.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))
    if exc is not None:
        from frictionlens import runtime

        state = runtime.installed()
        record_exception(span, exc, state is not None and state.options.capture_content)


class TaskHandle:
    """Yielded by ``task()``: the app's verdict on the task. The last call wins; calls
    after the block has ended are ignored."""

    __slots__ = ("span", "_outcome", "_reason", "_closed")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._outcome: str | None = None
        self._reason: str | None = None
        self._closed = False

    def succeed(self) -> None:
        """The task reached its goal."""
        self._set(semconv.TRAJECTORY_OUTCOME_SUCCESS, None)

    def fail(self, reason: str | None = None) -> None:
        """The task ended without reaching its goal; ``reason`` becomes ``error.type``,
        so keep it to a few fixed values (e.g. ``no_answer``, ``tool_unavailable``)."""
        self._set(semconv.TRAJECTORY_OUTCOME_FAILURE, reason)

    def abandon(self) -> None:
        """The user or the app gave up on the task before it could end either way."""
        self._set(semconv.TRAJECTORY_OUTCOME_ABANDONED, None)

    @property
    def outcome(self) -> str | None:
        """The verdict so far; after the block, the outcome recorded on the span."""
        return self._outcome

    def _set(self, outcome: str, reason: str | None) -> None:
        if not self._closed:
            self._outcome, self._reason = outcome, reason


class task:  # noqa: N801 - used like a function: ``with frictionlens.task("triage") as t:``
    """One agent task: opens ``invoke_agent {name}`` and yields a ``TaskHandle``.

    Without a verdict, the task succeeded if the block ended normally. An exception
    leaving the block makes it a failure (``error.type`` = the exception type, or the
    ``fail()`` reason); cancellation (``asyncio.CancelledError``, ``KeyboardInterrupt``,
    a closed generator) makes it abandoned unless a verdict was given. ``expected_steps``
    is the step budget (LLM calls); without it, one is learned from successful runs.
    """

    def __init__(self, name: str, *, expected_steps: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("task name must be a non-empty string")
        if expected_steps is not None and (
            isinstance(expected_steps, bool)
            or not isinstance(expected_steps, int)
            or expected_steps < 1
        ):
            raise ValueError("expected_steps must be a positive int")
        self.name = name
        self.expected_steps = expected_steps
        self._open: list[tuple[TaskHandle, object | None]] = []

    def __enter__(self) -> TaskHandle:
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
            semconv.GEN_AI_AGENT_NAME: self.name,
        }
        if self.expected_steps is not None:
            attrs[semconv.TRAJECTORY_EXPECTED_STEPS] = self.expected_steps
        span, token = _open(f"{semconv.OP_INVOKE_AGENT} {self.name}", attrs, "task")
        handle = TaskHandle(span)
        self._open.append((handle, token))
        return handle

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        handle, token = self._open.pop()
        handle._closed = True
        try:
            self._record_outcome(handle, exc)
        except Exception:
            count_internal_error("task")
            _log.debug("recording the task outcome failed", exc_info=True)
        _close(handle.span, token, "task")

    async def __aenter__(self) -> TaskHandle:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    @staticmethod
    def _record_outcome(handle: TaskHandle, exc: BaseException | None) -> None:
        span = handle.span
        outcome, reason = handle._outcome, handle._reason
        if isinstance(exc, Exception):
            outcome = semconv.TRAJECTORY_OUTCOME_FAILURE
            reason = reason or type(exc).__qualname__
        elif exc is not None and outcome is None:
            outcome = semconv.TRAJECTORY_OUTCOME_ABANDONED
        outcome = outcome or semconv.TRAJECTORY_OUTCOME_SUCCESS
        handle._outcome = outcome
        span.set_attribute(semconv.TRAJECTORY_OUTCOME, outcome)
        if outcome == semconv.TRAJECTORY_OUTCOME_FAILURE:
            _record_error(span, reason or semconv.ERROR_TYPE_OTHER, exc)


class tool:  # noqa: N801 - used like a function: ``with frictionlens.tool("search", call_id=c.id):``
    """One run of the app's own tool code: opens ``execute_tool {name}`` and yields the span.

    ``call_id`` is the id of the model's tool call this run answers; it pairs the run with
    the model's request so the two count as one call. An exception leaving the block is
    recorded as the tool's error (``error.type`` = its type) and re-raised unchanged.
    """

    def __init__(self, name: str, *, call_id: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("tool name must be a non-empty string")
        self.name = name
        self.call_id = call_id
        self._open: list[tuple[Span, object | None]] = []

    def __enter__(self) -> Span:
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: self.name,
        }
        if self.call_id is not None:
            attrs[semconv.GEN_AI_TOOL_CALL_ID] = str(self.call_id)
        span, token = _open(f"{semconv.OP_EXECUTE_TOOL} {self.name}", attrs, "tool")
        self._open.append((span, token))
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        span, token = self._open.pop()
        if exc is not None:
            try:
                _record_error(span, type(exc).__qualname__, exc)
            except Exception:
                count_internal_error("tool")
                _log.debug("recording the tool error failed", exc_info=True)
        _close(span, token, "tool")

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self.__exit__(exc_type, exc, tb)
