"""The batching meter: counter sums reach the SDK once per attribute set and collection, and
histogram values all at each collection, unchanged."""

from __future__ import annotations

import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from frictionlens.processors import meter as batching
from frictionlens.processors.meter import BatchingMeter


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


class _CountingCounter:
    """Counts the adds that reach the SDK counter it wraps."""

    def __init__(self, counter) -> None:
        self.counter = counter
        self.adds = 0

    def add(self, amount, attributes=None, context=None) -> None:
        self.adds += 1
        self.counter.add(amount, attributes, context)


def test_counter_sums_equal_direct_adds_at_every_collection():
    direct, batched = InMemoryMetricReader(), InMemoryMetricReader()
    _adds(MeterProvider(metric_readers=[direct]).get_meter("t"))
    meter = BatchingMeter(MeterProvider(metric_readers=[batched]).get_meter("t"))
    _adds(meter)
    assert _sums(batched) == _sums(direct)  # a collection hands the sums on first
    assert _sums(batched)[("test.events", (("kind", "edit"), ("model", "m")))] == 100 + 600
    assert _sums(batched) == _sums(direct)  # and again: nothing counted twice


def test_the_sdk_sees_one_add_per_attribute_set_and_collection():
    reader = InMemoryMetricReader()
    meter = BatchingMeter(MeterProvider(metric_readers=[reader]).get_meter("t"))
    counter = meter.create_counter("test.events")
    spy = counter._counter = _CountingCounter(counter._counter)  # pylint: disable=protected-access
    for n in range(100):
        counter.add(1, {"kind": "retry" if n % 2 else "edit"})
    assert spy.adds == 0  # nothing collected yet
    assert _sums(reader)[("test.events", (("kind", "edit"),))] == 50
    assert spy.adds == 2


def test_too_many_waiting_attribute_sets_are_handed_on_without_a_collection(monkeypatch):
    monkeypatch.setattr(batching, "MAX_WAITING_SETS", 3)
    meter = BatchingMeter(MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("t"))
    counter = meter.create_counter("test.many")
    spy = counter._counter = _CountingCounter(counter._counter)  # pylint: disable=protected-access
    for n in range(4):
        counter.add(1, {"n": n})
    assert spy.adds == 4


def test_batching_meters_over_one_meter_are_all_flushed_on_collection():
    reader = InMemoryMetricReader()
    sdk_meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    first, second = BatchingMeter(sdk_meter), BatchingMeter(sdk_meter)
    first.create_counter("test.first").add(1)
    second.create_counter("test.second").add(2)
    sums = _sums(reader)
    assert sums[("test.first", ())] == 1 and sums[("test.second", ())] == 2


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


def _histograms(
    reader: InMemoryMetricReader,
) -> dict[tuple[str, tuple[tuple[str, object], ...]], tuple]:
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    if hasattr(p, "bucket_counts"):
                        key = (metric.name, tuple(sorted(p.attributes.items())))
                        out[key] = (p.count, p.sum, p.min, p.max, tuple(p.bucket_counts))
    return out


def _records(meter, start: int) -> None:
    histogram = meter.create_histogram(
        "test.duration", unit="s", explicit_bucket_boundaries_advisory=(0.1, 1.0, 10.0)
    )
    shared = {"model": "m"}
    for n in range(start, start + 200):
        histogram.record(n % 13 / 3, shared)
        histogram.record(n, {"model": "other", "error": "timeout" if n % 5 else "none"})
    shared["model"] = "changed after recording"  # what was recorded keeps the old value
    histogram.record(-1.0, {"model": "m"})  # what the SDK refuses stays refused


def test_histograms_equal_direct_records_at_every_collection():
    direct, batched = InMemoryMetricReader(), InMemoryMetricReader()
    direct_meter = MeterProvider(metric_readers=[direct]).get_meter("t")
    meter = BatchingMeter(MeterProvider(metric_readers=[batched]).get_meter("t"))
    _records(direct_meter, 0)
    _records(meter, 0)
    first = _histograms(batched)
    assert first == _histograms(direct)
    assert first[("test.duration", (("model", "m"),))][0] == 200
    _records(direct_meter, 200)
    _records(meter, 200)
    assert _histograms(batched) == _histograms(direct)  # nothing recorded twice or lost


def test_the_sdk_sees_histogram_values_at_collection_and_a_full_batch_at_once(monkeypatch):
    reader = InMemoryMetricReader()
    meter = BatchingMeter(MeterProvider(metric_readers=[reader]).get_meter("t"))
    histogram = meter.create_histogram("test.steps")
    seen: list[float] = []
    sdk_record = histogram._histogram.record  # pylint: disable=protected-access

    def spy(amount, attributes=None, context=None) -> None:
        seen.append(amount)
        sdk_record(amount, attributes, context)

    histogram._histogram.record = spy  # pylint: disable=protected-access
    for n in range(5):
        histogram.record(n, {"task": "t"})
    assert seen == []  # nothing collected yet
    assert _histograms(reader)[("test.steps", (("task", "t"),))][0] == 5
    assert seen == [0, 1, 2, 3, 4]
    monkeypatch.setattr(batching, "MAX_WAITING_VALUES", 3)
    for n in range(3):
        histogram.record(n)
    assert len(seen) == 8  # a full batch goes to the SDK without waiting for a collection
