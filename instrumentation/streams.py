"""Stream proxies: the caller gets the SDK's stream back, and the span ends exactly once.

The span ends when the stream is exhausted, errors, or is closed by the caller (``close()``,
leaving its ``with``, or closing the HTTP response the SDK's helpers close directly), and at
the latest when the stream object is garbage collected, or when frictionlens shuts down
(``end_open_streams``: a stream the app still holds at exit). A close that comes before the
end marks the call abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import wrapt

from frictionlens.features.invocation import LLMInvocation
from frictionlens.health import count_internal_error
from frictionlens.instrumentation.telemetry import Telemetry, current_invocation

_log = logging.getLogger(__name__)

OnChunk = Callable[[LLMInvocation, Any], None]

#: streams whose span has not ended yet
_open: weakref.WeakSet[_StreamState] = weakref.WeakSet()
_open_lock = threading.Lock()


def end_open_streams() -> None:
    """End the span of every stream still open, as abandoned: at shutdown, before the
    pipeline closes (the finalisers that would end them at exit may run after it)."""
    with _open_lock:
        states = list(_open)
    for state in states:
        try:
            state.end(abandoned=True)
        except Exception:  # e.g. no worker thread can start this late: not the app's problem
            count_internal_error("stream")
            _log.debug("ending an open stream at shutdown failed", exc_info=True)


def _opened(state: _StreamState) -> None:
    with _open_lock:
        _open.add(state)


def _closed(state: _StreamState) -> None:
    with _open_lock:
        _open.discard(state)


class _StreamState:
    """What both proxies share: counting chunks and ending the span once."""

    __slots__ = ("inv", "telemetry", "on_chunk", "in_next", "__weakref__")

    def __init__(self, inv: LLMInvocation, telemetry: Telemetry, on_chunk: OnChunk) -> None:
        self.inv = inv
        self.telemetry = telemetry
        self.on_chunk = on_chunk
        self.in_next = False

    def chunk(self, item: Any) -> None:
        inv = self.inv
        if inv.first_chunk_ns is None:
            inv.first_chunk_ns = time.time_ns()
        inv.chunks += 1
        try:
            self.on_chunk(inv, item)
        except Exception:
            count_internal_error("stream")
            _log.debug("reading a stream chunk failed", exc_info=True)

    def end(self, abandoned: bool = False) -> None:
        _closed(self)
        if self.inv.ended:
            return
        self.inv.abandoned = abandoned
        self.telemetry.finish(self.inv)

    def error(self, exc: BaseException) -> None:
        _closed(self)
        if not self.inv.ended:
            self.telemetry.fail(self.inv, exc)

    def closed_by_caller(self) -> None:
        """The HTTP response was closed; outside our own next() that means the caller stopped."""
        if not self.in_next:
            self.end(abandoned=True)


def _hook_response_close(response: Any, state: _StreamState, name: str) -> None:
    original = getattr(response, name, None)
    if original is None:
        return
    ref = weakref.ref(state)

    if name == "aclose":

        async def hooked(*args: Any, **kwargs: Any) -> Any:
            st = ref()
            if st is not None:
                st.closed_by_caller()
            return await original(*args, **kwargs)
    else:

        def hooked(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            st = ref()
            if st is not None:
                st.closed_by_caller()
            return original(*args, **kwargs)

    try:
        setattr(response, name, hooked)
    except Exception:  # an SDK response that refuses attributes: the finaliser still ends the span
        pass


class SyncStreamProxy(wrapt.ObjectProxy):
    def __init__(
        self, wrapped: Any, inv: LLMInvocation, telemetry: Telemetry, on_chunk: OnChunk
    ) -> None:
        super().__init__(wrapped)
        state = _StreamState(inv, telemetry, on_chunk)
        _opened(state)
        self._self_state = state
        _hook_response_close(getattr(wrapped, "response", None), state, "close")
        weakref.finalize(self, state.end, True)

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        state = self._self_state
        state.in_next = True
        # a stream that sends its request when first read (LiteLLM's text completions): that
        # SDK call runs inside this one, not as a second span
        token = None if state.inv.chunks else current_invocation.set(state.inv)
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            state.end()
            raise
        except BaseException as exc:
            state.error(exc)
            raise
        finally:
            state.in_next = False
            if token is not None:
                current_invocation.reset(token)
        state.chunk(item)
        return item

    def close(self) -> None:
        self._self_state.end(abandoned=True)
        self.__wrapped__.close()

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        state = self._self_state
        if exc is not None and not isinstance(exc, GeneratorExit):
            state.error(exc)
        state.end(abandoned=True)
        return self.__wrapped__.__exit__(exc_type, exc, tb)


class AsyncStreamProxy(wrapt.ObjectProxy):
    def __init__(
        self, wrapped: Any, inv: LLMInvocation, telemetry: Telemetry, on_chunk: OnChunk
    ) -> None:
        super().__init__(wrapped)
        state = _StreamState(inv, telemetry, on_chunk)
        _opened(state)
        self._self_state = state
        _hook_response_close(getattr(wrapped, "response", None), state, "aclose")
        weakref.finalize(self, state.end, True)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        state = self._self_state
        state.in_next = True
        token = None if state.inv.chunks else current_invocation.set(state.inv)
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            state.end()
            raise
        except asyncio.CancelledError:  # the caller stopped waiting: abandoned, not failed
            state.end(abandoned=True)
            raise
        except BaseException as exc:
            state.error(exc)
            raise
        finally:
            state.in_next = False
            if token is not None:
                current_invocation.reset(token)
        state.chunk(item)
        return item

    async def close(self) -> None:
        self._self_state.end(abandoned=True)
        await self.__wrapped__.close()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        state = self._self_state
        if exc is not None:
            state.error(exc)
        state.end(abandoned=True)
        return await self.__wrapped__.__aexit__(exc_type, exc, tb)
