"""What every provider wrapper shares: run one SDK call inside an invocation, count retries.

A provider module describes its SDK with a ``CallSpec`` (how to read the request, the
response and each stream chunk into an ``LLMInvocation``); the wrapper factories here do
the rest the same way for every SDK: re-entrancy guard, span start, exceptions recorded and
re-raised unchanged, streams proxied, our own failures counted and swallowed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from frictionlens.features.invocation import LLMInvocation
from frictionlens.health import count_internal_error
from frictionlens.instrumentation import raw
from frictionlens.instrumentation.streams import AsyncStreamProxy, OnChunk, SyncStreamProxy
from frictionlens.instrumentation.telemetry import Telemetry, current_invocation

_log = logging.getLogger(__name__)


# -- reading SDK objects ---------------------------------------------------------------
@dataclass(frozen=True)
class CallSpec:
    """One kind of SDK call, in provider terms."""

    provider: str
    request: Callable[[Any, Mapping[str, Any]], LLMInvocation]
    """(resource instance, call kwargs) -> a started-to-be invocation"""
    response: Callable[[LLMInvocation, Any], None]
    chunk: OnChunk | None = None
    """reads one stream item; None for calls that never stream"""
    positional: tuple[str, ...] = ()
    """names of the parameters a call may pass by position, for ``request``"""

    def named(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
        """The call's arguments by name."""
        if not args or not self.positional:
            return kwargs
        return {**dict(zip(self.positional, args)), **kwargs}


def begin(
    spec: CallSpec, telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]
) -> LLMInvocation | None:
    """Start an invocation, or None when we must stay out (nested call, or our own failure)."""
    outer = current_invocation.get()
    if outer is not None and not outer.ended:
        return None
    try:
        inv = spec.request(instance, kwargs)
        telemetry.start(inv)
        return inv
    except Exception:
        count_internal_error(spec.provider)
        _log.debug("could not start the call span", exc_info=True)
        return None


def complete(
    spec: CallSpec, telemetry: Telemetry, inv: LLMInvocation, result: Any, awaited: bool = False
) -> Any:
    """Record a returned value: a stream gets a proxy, anything else is read and passed on.

    ``awaited``: an async call's result; a stream that iterates both ways (LiteLLM's) is async."""
    try:
        if type(result).__name__ in raw.RESPONSE_TYPES:  # the caller reads the body later
            return raw.proxy(
                result,
                inv,
                telemetry,
                lambda parsed: complete(spec, telemetry, inv, parsed, awaited),
            )
        if (
            inv.streaming
            and spec.chunk is not None
            and hasattr(result, "__anext__")
            and (awaited or not hasattr(result, "__next__"))
        ):
            return AsyncStreamProxy(result, inv, telemetry, spec.chunk)
        if inv.streaming and spec.chunk is not None and hasattr(result, "__next__"):
            return SyncStreamProxy(result, inv, telemetry, spec.chunk)
        spec.response(inv, result)
    except Exception:
        count_internal_error(spec.provider)
        _log.debug("could not read the response", exc_info=True)
    telemetry.finish(inv)
    return result


def run(
    spec: CallSpec,
    telemetry: Telemetry,
    instance: Any,
    kwargs: Mapping[str, Any],
    call: Callable[[], Any],
) -> Any:
    inv = begin(spec, telemetry, instance, kwargs)
    if inv is None:
        return call()
    token = current_invocation.set(inv)
    try:
        result = call()
    except BaseException as exc:
        telemetry.fail(inv, exc)
        raise
    finally:
        current_invocation.reset(token)
    return complete(spec, telemetry, inv, result)


async def run_async(
    spec: CallSpec,
    telemetry: Telemetry,
    instance: Any,
    kwargs: Mapping[str, Any],
    call: Callable[[], Awaitable[Any]],
) -> Any:
    inv = begin(spec, telemetry, instance, kwargs)
    if inv is None:
        return await call()
    token = current_invocation.set(inv)
    try:
        result = await call()
    except BaseException as exc:
        telemetry.fail(inv, exc)
        raise
    finally:
        current_invocation.reset(token)
    return complete(spec, telemetry, inv, result, awaited=True)


def sync_wrapper(spec: CallSpec, telemetry: Telemetry):
    def wrapper(wrapped, instance, args, kwargs):
        named = spec.named(args, kwargs)
        return run(spec, telemetry, instance, named, lambda: wrapped(*args, **kwargs))

    return wrapper


def async_wrapper(spec: CallSpec, telemetry: Telemetry):
    async def wrapper(wrapped, instance, args, kwargs):
        named = spec.named(args, kwargs)
        return await run_async(spec, telemetry, instance, named, lambda: wrapped(*args, **kwargs))

    return wrapper


def telemetry_from(kwargs: Mapping[str, Any]) -> Telemetry:
    """The ``telemetry`` instrument() passes, else (opentelemetry-instrument) the pipeline's own."""
    telemetry = kwargs.get("telemetry")
    if telemetry is None:
        from frictionlens import runtime

        telemetry = runtime.telemetry_for_auto_instrumentation(
            kwargs.get("tracer_provider"), kwargs.get("meter_provider")
        )
    return telemetry


# -- HTTP retries inside one SDK call (Stainless-generated SDKs sleep in _sleep_for_retry) --
def _count_retry() -> None:
    inv = current_invocation.get()
    if inv is not None:
        inv.retries += 1


def _sync_retry_hook(wrapped, instance, args, kwargs):
    _count_retry()
    return wrapped(*args, **kwargs)


async def _async_retry_hook(wrapped, instance, args, kwargs):
    _count_retry()
    return await wrapped(*args, **kwargs)


def stainless_retry_hooks(base_client_module: str) -> list[tuple[str, str, Any]]:
    """(module, "Class.method", hook) for the sync and async retry sleeps of an SDK generated
    by Stainless (openai, anthropic: ``<sdk>._base_client``). Other SDKs retry elsewhere (or
    not at all) and need hooks of their own; without them ``frictionlens.retry.count`` stays 0."""
    return [
        (base_client_module, "SyncAPIClient._sleep_for_retry", _sync_retry_hook),
        (base_client_module, "AsyncAPIClient._sleep_for_retry", _async_retry_hook),
    ]


def wrap_all(targets: Iterable[tuple[str, str, Any]], sdk: str) -> None:
    """Wrap each (module, "Class.method", wrapper); what this SDK version lacks is skipped."""
    for module, name, wrapper in targets:
        try:
            wrapt.wrap_function_wrapper(module, name, wrapper)
        except (AttributeError, ImportError):
            _log.debug("%s has no %s.%s; not instrumented", sdk, module, name)


def unwrap_all(targets: Iterable[tuple[str, str]]) -> None:
    for module, name in targets:
        owner_name, _, method = name.rpartition(".")
        try:
            owner = importlib.import_module(module)
            if owner_name:
                owner = getattr(owner, owner_name)
            unwrap(owner, method)
        except (AttributeError, ImportError):
            pass
