"""A Meter whose counters add once per batch instead of once per call.

The SDK validates and hashes the attributes of every ``Counter.add`` (tens of µs each);
the stages add per span (findings, state evictions), which in the collector is a large
share of each span's cost. Counters made here sum their adds per attribute set and hand
each sum to the SDK counter on ``flush()``, which the collector's worker calls after every
batch (and at shutdown): the exported sums are the same, they only arrive up to one batch
later. Every other instrument is the wrapped meter's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    Observation,
    UpDownCounter,
)
from opentelemetry.util.types import Attributes

__all__ = ["BatchingMeter"]

Callback = Callable[[CallbackOptions], "Sequence[Observation]"]


class _BatchedCounter(Counter):
    """Sums per attribute set until ``flush``."""

    def __init__(self, counter: Counter, name: str, unit: str, description: str) -> None:
        super().__init__(name, unit=unit, description=description)
        self._counter = counter
        self._lock = threading.Lock()
        self._sums: dict[tuple[tuple[str, object], ...], float] = {}

    def add(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        if (
            context is not None or amount < 0
        ):  # an exemplar's context, or what the SDK refuses: as it is
            self._counter.add(amount, attributes, context)
            return
        key = tuple(attributes.items()) if attributes else ()
        try:
            with self._lock:
                self._sums[key] = self._sums.get(key, 0) + amount
        except TypeError:  # an unhashable value (a list): no batching for it
            self._counter.add(amount, attributes)

    def flush(self) -> None:
        with self._lock:
            sums, self._sums = self._sums, {}
        for key, amount in sums.items():
            self._counter.add(amount, dict(key))


class BatchingMeter(Meter):
    """``meter`` with batched counters; call ``flush()`` after each batch of work."""

    def __init__(self, meter: Meter) -> None:
        super().__init__(meter.name, meter.version, meter.schema_url)
        self._meter = meter
        self._counters: list[_BatchedCounter] = []

    def flush(self) -> None:
        """Hand every counter's sums to the SDK."""
        for counter in list(self._counters):
            counter.flush()

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        counter = _BatchedCounter(
            self._meter.create_counter(name, unit, description), name, unit, description
        )
        self._counters.append(counter)
        return counter

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> UpDownCounter:
        return self._meter.create_up_down_counter(name, unit, description)

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[Callback] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableCounter:
        return self._meter.create_observable_counter(name, callbacks, unit, description)

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Histogram:
        return self._meter.create_histogram(
            name,
            unit,
            description,
            explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
        )

    def create_gauge(
        self, name: str, unit: str = "", description: str = ""
    ) -> Any:  # the API's Gauge is private
        return self._meter.create_gauge(name, unit, description)

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[Callback] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableGauge:
        return self._meter.create_observable_gauge(name, callbacks, unit, description)

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[Callback] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableUpDownCounter:
        return self._meter.create_observable_up_down_counter(name, callbacks, unit, description)
