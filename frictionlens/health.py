"""Counts frictionlens' own failures, which are caught so they never reach the app.

The counts are readable in-process (``internal_errors()``) and exported as the metric
``frictionlens.internal.errors`` once a meter is bound.
"""

from __future__ import annotations

import threading
from collections import Counter

from opentelemetry.metrics import Counter as MetricCounter
from opentelemetry.metrics import Meter

from frictionlens import semconv

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_evictions: Counter[tuple[str, str]] = Counter()
_metric: MetricCounter | None = None
_eviction_metric: MetricCounter | None = None


def bind_meter(meter: Meter | None) -> None:
    """Export the counts through ``meter`` from now on (None stops exporting)."""
    global _metric, _eviction_metric
    _metric = (
        None
        if meter is None
        else meter.create_counter(
            semconv.METRIC_INTERNAL_ERRORS,
            unit="{error}",
            description="frictionlens failures caught and skipped",
        )
    )
    _eviction_metric = (
        None
        if meter is None
        else meter.create_counter(
            semconv.METRIC_STATE_EVICTIONS,
            unit="{entry}",
            description="per-key state dropped to stay within its cap or TTL",
        )
    )


def count_eviction(state: str, reason: str, n: int = 1) -> None:
    """``n`` entries of the bounded table ``state`` dropped by its ``reason`` (``cap`` or ``ttl``)."""
    with _lock:
        _evictions[(state, reason)] += n
    metric = _eviction_metric
    if metric is not None:
        try:
            metric.add(n, {semconv.METRIC_ATTR_STATE: state, semconv.METRIC_ATTR_REASON: reason})
        except Exception:  # pragma: no cover - a broken meter must not break the caller
            pass


def evictions() -> dict[tuple[str, str], int]:
    """(state, reason) -> entries dropped so far in this process."""
    with _lock:
        return dict(_evictions)


def count_internal_error(component: str) -> None:
    with _lock:
        _counts[component] += 1
    metric = _metric
    if metric is not None:
        try:
            metric.add(1, {semconv.METRIC_ATTR_COMPONENT: component})
        except Exception:  # pragma: no cover - a broken meter must not break the caller
            pass


def internal_errors() -> dict[str, int]:
    with _lock:
        return dict(_counts)
