"""A real OTLP receiver for tests: what exporters send, decoded, kept in memory.

Use the ``otlp_receiver`` fixture (function scope). Point an in-process exporter at
``grpc_endpoint`` / ``http_url``, or a subprocess at it with ``env()``, then assert on
``spans()`` / ``metrics()`` / ``logs()`` (plain dicts, see ``frictionlens.collector.decode``)
or wait for telemetry that arrives asynchronously with ``wait_for_spans`` / ``wait_for_metric``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from google.protobuf.message import Message
from opentelemetry.sdk.trace import ReadableSpan

from frictionlens.collector.decode import log_records, metric_points, readable_spans, span_dicts
from frictionlens.collector.receiver import OTLPReceiver, Signal

SpanDict = dict[str, Any]
T = TypeVar("T")


class CapturedOTLP:
    """An OTLPReceiver on free local ports whose sink keeps every request, thread-safely."""

    def __init__(
        self,
        *,
        grpc_endpoint: str | None = "127.0.0.1:0",
        http_endpoint: str | None = "127.0.0.1:0",
    ) -> None:
        self._changed = threading.Condition()
        self._requests: dict[Signal, list[Message]] = {"traces": [], "metrics": [], "logs": []}
        self.receiver = OTLPReceiver(
            self._receive, grpc_endpoint=grpc_endpoint, http_endpoint=http_endpoint
        )

    def __enter__(self) -> CapturedOTLP:
        self.receiver.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.receiver.stop(grace_s=0)

    def _receive(self, signal: Signal, message: Message) -> None:
        with self._changed:
            self._requests[signal].append(message)
            self._changed.notify_all()

    # -- where to send -------------------------------------------------------------------
    @property
    def grpc_endpoint(self) -> str:
        """``127.0.0.1:PORT`` for ``OTLP*Exporter(endpoint=..., insecure=True)`` (gRPC)."""
        assert self.receiver.grpc_endpoint is not None, "gRPC is off"
        return self.receiver.grpc_endpoint

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT``; HTTP exporters take ``http_url + "/v1/traces"`` etc."""
        assert self.receiver.http_url is not None, "HTTP is off"
        return self.receiver.http_url

    def env(self, protocol: str = "grpc") -> dict[str, str]:
        """The standard OTEL_EXPORTER_OTLP_* variables that point an app here."""
        if protocol == "grpc":
            return {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{self.grpc_endpoint}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
            }
        if protocol == "http/protobuf":
            return {
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.http_url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
        raise ValueError(f"protocol must be 'grpc' or 'http/protobuf', got {protocol!r}")

    # -- what arrived --------------------------------------------------------------------
    def requests(self, signal: Signal) -> list[Message]:
        """The raw Export*ServiceRequest messages of ``signal``, in arrival order."""
        with self._changed:
            return list(self._requests[signal])

    def readable_spans(self) -> list[ReadableSpan]:
        return [s for req in self.requests("traces") for s in readable_spans(req)]

    def spans(self) -> list[SpanDict]:
        return [s for req in self.requests("traces") for s in span_dicts(req)]

    def metrics(self) -> list[dict[str, Any]]:
        return [p for req in self.requests("metrics") for p in metric_points(req)]

    def logs(self) -> list[dict[str, Any]]:
        return [r for req in self.requests("logs") for r in log_records(req)]

    def clear(self) -> None:
        with self._changed:
            for received in self._requests.values():
                received.clear()

    # -- waiting for asynchronous exports ------------------------------------------------
    def wait_for_spans(
        self, predicate_or_count: Callable[[SpanDict], bool] | int, timeout: float = 10
    ) -> list[SpanDict]:
        """With a count: all spans once at least that many arrived. With a predicate: the
        spans matching it once at least one does. Fails the test on timeout."""
        if isinstance(predicate_or_count, int):
            count = predicate_or_count

            def ready() -> list[SpanDict] | None:
                spans = self.spans()
                return spans if len(spans) >= count else None

            what = f"{count} span(s)"
        else:
            predicate = predicate_or_count

            def ready() -> list[SpanDict] | None:
                return [s for s in self.spans() if predicate(s)] or None

            what = "a span matching the predicate"
        return self._wait(ready, timeout, what, lambda: sorted({s["name"] for s in self.spans()}))

    def wait_for_metric(self, name: str, timeout: float = 10) -> list[dict[str, Any]]:
        """Every point of metric ``name`` received so far, oldest first, once there is one.

        Cumulative exporters resend running totals: the last point per attribute set is
        the current value."""
        return self._wait(
            lambda: [p for p in self.metrics() if p["name"] == name] or None,
            timeout,
            f"metric {name!r}",
            lambda: sorted({p["name"] for p in self.metrics()}),
        )

    def _wait(
        self, ready: Callable[[], T | None], timeout: float, what: str, seen: Callable[[], object]
    ) -> T:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = ready()
                if result is not None:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; received: {seen()}")
                self._changed.wait(remaining)


@pytest.fixture
def otlp_receiver() -> Iterator[CapturedOTLP]:
    """A running OTLP receiver (gRPC + HTTP on free local ports) that records everything."""
    with CapturedOTLP() as captured:
        yield captured
