"""A Meter whose counters add once per collection instead of once per call.

The SDK validates and hashes the attributes of every ``Counter.add`` (about 15 µs with five
attributes); the stages and the instrumentation add per span (findings, retries, format
failures, state evictions). Counters made here sum their adds per attribute set and hand each
sum to the SDK counter when a metric reader collects (an observable gauge's callback, which
reports nothing itself), when ``flush()`` is called, or when too many attribute sets wait.
Every collection exports the same sums as direct adds would; only the SDK work is done once
per attribute set and collection instead of once per add. Every other instrument is the
wrapped meter's own: a histogram has no way to take many values at once.

Used by the in-app pipeline (``instrument()``) and by the collector.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
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

from frictionlens import semconv

__all__ = ["BatchingMeter"]

#: attribute sets a counter sums before it hands them on without waiting for a collection
MAX_WAITING_SETS = 512

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
                full = len(self._sums) > MAX_WAITING_SETS
        except TypeError:  # an unhashable value (a list): no batching for it
            self._counter.add(amount, attributes)
            return
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            sums, self._sums = self._sums, {}
        for key, amount in sums.items():
            self._counter.add(amount, dict(key))


#: wrapped meter -> the batching meters over it, all flushed by one callback on collection
#: (an SDK meter registers an instrument name once: a second gauge would get no callback)
_over: weakref.WeakKeyDictionary[Meter, weakref.WeakSet[BatchingMeter]] = (
    weakref.WeakKeyDictionary()
)
_over_lock = threading.Lock()


def _flush_on_collect(meter: Meter) -> Callable[[CallbackOptions], Iterable[Observation]]:
    ref = weakref.ref(meter)

    def flush(options: CallbackOptions) -> Iterable[Observation]:
        wrapped = ref()
        for batching in list(_over.get(wrapped, ())) if wrapped is not None else ():
            batching.flush()
        return ()

    return flush


class BatchingMeter(Meter):
    """``meter`` with batched counters, handed on at every collection (or ``flush()``)."""

    def __init__(self, meter: Meter) -> None:
        super().__init__(meter.name, meter.version, meter.schema_url)
        self._meter = meter
        self._counters: list[_BatchedCounter] = []
        with _over_lock:
            known = _over.get(meter)
            if known is None:
                known = _over[meter] = weakref.WeakSet()
                meter.create_observable_gauge(
                    semconv.METRIC_INTERNAL_COUNTER_FLUSH, [_flush_on_collect(meter)]
                )
            known.add(self)

    def flush(self) -> None:
        """Hand every counter's sums to the SDK now."""
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
