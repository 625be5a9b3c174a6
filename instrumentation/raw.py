"""Raw-response calls (``.with_raw_response`` / ``.with_streaming_response``): one span per call.

Asked for the raw response, the Stainless-generated SDKs (openai, anthropic) send the request
(retries included) and hand back an ``APIResponse`` whose body the caller reads later. The
caller gets that object back, proxied: its first ``parse()`` records the output and ends the
span (an event stream gets the usual stream proxy, so the span ends with the stream). A
response closed, or dropped, without ``parse()`` (its bytes read by the caller) ends the span
with the output not judged: we never saw it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import wrapt

from frictionlens.features.invocation import LLMInvocation
from frictionlens.instrumentation.telemetry import Telemetry

#: the SDKs' raw response classes (``LegacyAPIResponse``: openai's ``with_raw_response``)
RESPONSE_TYPES = frozenset({"APIResponse", "AsyncAPIResponse", "LegacyAPIResponse"})

Record = Callable[[Any], Any]
"""records a parsed response and returns what the caller gets (a stream proxy for streams)"""


def _end_unread(inv: LLMInvocation, telemetry: Telemetry) -> None:
    if not inv.ended:
        inv.output_read = False
        telemetry.finish(inv)


class _RawState:
    __slots__ = ("inv", "telemetry", "record", "first")

    def __init__(self, inv: LLMInvocation, telemetry: Telemetry, record: Record) -> None:
        self.inv = inv
        self.telemetry = telemetry
        self.record = record
        self.first: tuple[Any, Any] | None = None

    def parsed(self, value: Any) -> Any:
        """The first parse is recorded; the SDK caches it, so later parses return the same object."""
        if self.first is None:
            self.first = (value, self.record(value))
        return self.first[1] if value is self.first[0] else value

    def closed(self) -> None:
        if self.first is None:
            _end_unread(self.inv, self.telemetry)


class SyncRawResponseProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, state: _RawState) -> None:
        super().__init__(wrapped)
        self._self_state = state

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_state.parsed(self.__wrapped__.parse(*args, **kwargs))

    def close(self) -> None:
        self._self_state.closed()
        self.__wrapped__.close()


class AsyncRawResponseProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, state: _RawState) -> None:
        super().__init__(wrapped)
        self._self_state = state

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_state.parsed(await self.__wrapped__.parse(*args, **kwargs))

    async def close(self) -> None:
        self._self_state.closed()
        await self.__wrapped__.close()


def proxy(response: Any, inv: LLMInvocation, telemetry: Telemetry, record: Record) -> Any:
    """The caller's raw response, proxied; the span ends at the latest when it is collected."""
    state = _RawState(inv, telemetry, record)
    cls = (
        AsyncRawResponseProxy
        if type(response).__name__ == "AsyncAPIResponse"
        else SyncRawResponseProxy
    )
    wrapped = cls(response, state)
    weakref.finalize(wrapped, _end_unread, inv, telemetry)
    return wrapped
