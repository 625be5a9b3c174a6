"""The collector's batching meter: counter sums reach the SDK once per batch, unchanged."""

from __future__ import annotations

import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from frictionlens.collector.meter import BatchingMeter


def _sums(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, object], ...]], float]:
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    key = tuple(
                        sorted(
                            (k, tuple(v) if isinstance(v, (list, tuple)) else v)
                            for k, v in point.attributes.items()
                        )
                    )
                    out[(metric.name, key)] = getattr(point, "value", None) or getattr(
                        point, "sum", None
                    )
    return out


def _adds(meter) -> None:
    counter = meter.create_counter("test.events", unit="{event}")
    histogram = meter.create_histogram("test.steps")
    for n in range(300):
        counter.add(1, {"kind": "retry" if n % 3 else "edit", "model": "m"})
        counter.add(2, {"model": "m", "kind": "edit"})  # same set, another order
        counter.add(1)
        counter.add(1, {"tags": ["a", "b"]})  # unhashable: not batched
        histogram.record(n % 7, {"task": "t"})
    counter.add(-1, {"kind": "refused"})  # what the SDK refuses stays refused


def test_counter_sums_equal_direct_adds_and_arrive_only_on_flush():
    direct, batched = InMemoryMetricReader(), InMemoryMetricReader()
    _adds(MeterProvider(metric_readers=[direct]).get_meter("t"))
    meter = BatchingMeter(MeterProvider(metric_readers=[batched]).get_meter("t"))
    _adds(meter)
    waiting = _sums(batched)
    assert (
        "test.events",
        (("kind", "retry"), ("model", "m")),
    ) not in waiting  # held until the batch ends
    assert waiting[("test.events", (("tags", ("a", "b")),))] == 300  # passed straight on
    meter.flush()
    assert _sums(batched) == _sums(direct)
    assert _sums(batched)[("test.events", (("kind", "edit"), ("model", "m")))] == 100 + 600


def test_adds_from_other_threads_are_all_counted():
    reader = InMemoryMetricReader()
    meter = BatchingMeter(MeterProvider(metric_readers=[reader]).get_meter("t"))
    counter = meter.create_counter("test.threads")

    def add() -> None:
        for _ in range(2000):
            counter.add(1, {"k": "v"})

    threads = [threading.Thread(target=add) for _ in range(4)]
    for th in threads:
        th.start()
    meter.flush()  # while they add: nothing may be lost between flushes
    for th in threads:
        th.join()
    meter.flush()
    assert _sums(reader)[("test.threads", (("k", "v"),))] == 8000
