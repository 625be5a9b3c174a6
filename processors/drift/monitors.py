"""One monitor per feature of a stream: its detectors, baseline, re-anchoring and saved state.

A monitor raises at most one ``Alarm`` per change: when any of its detectors fires, the
feature's baseline is dropped and re-learnt from the calls that follow (the new normal),
so a lasting change is reported once, not once per call.

The numeric detectors are the rows of ``NUMERIC_DETECTORS``; each has a threshold schedule
of the same name in ``calibration.Thresholds``.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from frictionlens.processors.drift import design
from frictionlens.processors.drift.calibration import Thresholds
from frictionlens.processors.drift.detectors import (
    BernoulliCUSUM,
    CategoryChange,
    DriftDetector,
    MeanCUSUM,
    ReferenceSample,
    TwoWindowKS,
    VarianceCUSUM,
    at_size,
)


@dataclass(frozen=True, slots=True)
class Alarm:
    feature: str
    statistic: str
    value: float
    threshold: float
    run_length: int
    """calls the evidence built up over: the change began about this many calls ago"""
    score: float = 1.0
    """value over threshold"""


def _alarm(feature: str, det: DriftDetector) -> Alarm:
    return Alarm(
        feature,
        det.name,
        float(det.statistic),
        float(det.threshold),
        int(det.run_length),
        float(det.statistic / det.threshold),
    )


@dataclass(frozen=True, slots=True)
class NumericDetector:
    """A row of ``NUMERIC_DETECTORS``: how a numeric monitor builds one of its detectors."""

    fit: str
    """its threshold schedule in ``calibration.Thresholds`` (and its fit in ``FITS``)"""
    make: Callable[[ReferenceSample, float], DriftDetector]
    """(the feature's reference, initial threshold) -> detector"""
    on_values: bool = False
    """fed the raw values (else the normal scores of their ranks)"""


NUMERIC_DETECTORS: tuple[NumericDetector, ...] = (
    NumericDetector("mean", lambda ref, h: MeanCUSUM(h, sign=1.0)),
    NumericDetector("mean", lambda ref, h: MeanCUSUM(h, sign=-1.0)),
    NumericDetector("variance", lambda ref, h: VarianceCUSUM(h)),
    NumericDetector("ks", lambda ref, h: TwoWindowKS(ref, h), on_values=True),
)
"""every detector a numeric feature runs; each row is one statistic of the budget"""


class RateMonitor(BernoulliCUSUM):
    """A rate of a failure sign (format invalid, preamble, refusal…): upward changes only.

    A falling failure rate is good news and costs no false-alarm budget.
    """

    __slots__ = ("feature",)

    def __init__(self, feature: str, thresholds: Thresholds) -> None:
        schedule = thresholds["rate"]
        super().__init__(schedule[0], schedule=schedule)
        self.feature = feature

    def alarm(self) -> Alarm:
        """The alarm of the change just detected; the baseline starts over."""
        alarm = _alarm(self.feature, self)
        self.reset()
        return alarm

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "n": self.n}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        count, n = float(state["count"]), float(state["n"])
        if not 0.0 <= count <= n:
            raise ValueError(f"bad rate baseline for {self.feature}")
        self.count, self.n = count, n
        if self.ready:
            self.weigh()


class NumericMonitor:
    """A numeric feature: the ``NUMERIC_DETECTORS`` against a growing reference sample.

    Values are ranked within the reference, so lengths, latencies and similarity scores
    need no transformation and no distribution assumption. The first ``MIN_BASELINE``
    values make the reference; each later one joins it right after it is scored until it
    is full: with no change, such sequential ranks are independent and uniform (Rényi), so
    the short baseline costs no false alarms. A full reference takes a value now and then
    once it leaves the KS window, and has its own thresholds.
    """

    __slots__ = (
        "feature",
        "reference",
        "detectors",
        "scored",
        "valued",
        "ks",
        "_schedules",
        "_next_size",
    )

    def __init__(self, feature: str, thresholds: Thresholds) -> None:
        self.feature = feature
        self.reference = ref = ReferenceSample(design.FULL_BASELINE)
        self._schedules = tuple(thresholds[row.fit] for row in NUMERIC_DETECTORS)
        self.detectors = tuple(
            row.make(ref, schedule[0]) for row, schedule in zip(NUMERIC_DETECTORS, self._schedules)
        )
        self.scored = tuple(d for d, r in zip(self.detectors, NUMERIC_DETECTORS) if not r.on_values)
        self.valued = tuple(d for d, r in zip(self.detectors, NUMERIC_DETECTORS) if r.on_values)
        self.ks = next(d for d in self.detectors if isinstance(d, TwoWindowKS))
        """the window that values pass through before they join the reference"""
        self._next_size = design.REFERENCE_SIZES[1]
        """reference size at which the thresholds tighten next"""

    def update(self, x: float, rng: random.Random) -> Alarm | None:
        ref = self.reference
        if not ref.full and not ref.ready:
            ref.add(x, rng)
            return None
        z = ref.score(x, rng)
        fired = False
        for det in self.scored:
            if det.update(z).drift_detected:
                fired = True
        for det in self.valued:
            if det.update(x).drift_detected:
                fired = True
        if fired:
            return self._alarm()
        if not ref.full:
            self._grow(x, rng)
            return None
        old = self.ks.evicted
        if old == old:  # not NaN: it left the window and may join the reference
            ref.skip -= 1  # ReferenceSample.add, inlined: this runs on every call
            if ref.skip < 0:
                ref.replace(old, rng)
        return None

    def _grow(self, x: float, rng: random.Random) -> None:
        """A growing reference takes the value just scored, unless a CUSUM is high."""
        if any(d.statistic > d.threshold * design.FREEZE for d in self.scored):
            return
        ref = self.reference
        ref.add(x, rng)
        if len(ref.values) >= self._next_size:
            self._tighten()

    def _tighten(self) -> None:
        """Thresholds for the reference's new size."""
        size = len(self.reference.values)
        for det, schedule in zip(self.detectors, self._schedules):
            det.threshold = at_size(schedule, size)
        self._next_size = next((n for n in design.REFERENCE_SIZES if n > size), math.inf)

    def _alarm(self) -> Alarm:
        det = max(self.detectors, key=lambda d: d.score if d.drift_detected else 0.0)
        alarm = _alarm(self.feature, det)
        self.reanchor()
        return alarm

    def reanchor(self) -> None:
        """Drop the baseline: the values that follow are the new normal."""
        self.reference.clear()
        for det, schedule in zip(self.detectors, self._schedules):
            det.reset()
            det.threshold = schedule[0]
        self._next_size = design.REFERENCE_SIZES[1]

    @property
    def score(self) -> float:
        if not self.reference.ready:
            return 0.0
        return max(d.score for d in self.detectors)

    def state_dict(self) -> dict[str, Any]:
        # 7 significant digits: plenty for ranks, and half the file
        return {
            "reference": [float(f"{v:.7g}") for v in self.reference.values],
            "seen": self.reference.seen,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        values = array("d", sorted(float(v) for v in state["reference"]))
        if len(values) > self.reference.size or not all(np.isfinite(values)):
            raise ValueError(f"bad reference for {self.feature}")
        ref = self.reference
        ref.values, ref.full, ref.skip = values, len(values) >= ref.size, 0
        ref.seen = max(int(state["seen"]), len(values))
        self._tighten()


class TimingMonitor(NumericMonitor):
    """A timing feature (latency, time to first chunk, tokens per second), watched as the
    median of each ``design.TIMING_BLOCK`` calls: timings move with the host's and the
    provider's load in bursts, which a median of a few calls mostly ignores. Medians of
    exchangeable values are exchangeable, so the calibration holds as it is."""

    __slots__ = ("pending",)

    def __init__(self, feature: str, thresholds: Thresholds) -> None:
        super().__init__(feature, thresholds)
        self.pending: list[float] = []

    def update(self, x: float, rng: random.Random) -> Alarm | None:
        pending = self.pending
        pending.append(x)
        if len(pending) < design.TIMING_BLOCK:
            return None
        pending.sort()
        median = pending[len(pending) // 2]
        pending.clear()
        alarm = super().update(median, rng)
        if alarm is None:
            return None
        return replace(alarm, run_length=alarm.run_length * design.TIMING_BLOCK)


class ContentMonitor:
    """Content drift: how unlike the route's usual outputs each output is.

    The first ``anchor`` vectors fix a centroid; from then on each output's dissimilarity
    (minus its dot product with the centroid) is a numeric feature. Because the centroid is
    frozen before the reference dissimilarities are collected, a new output's dissimilarity
    is exchangeable with them when nothing changed, and the rank calibration holds exactly.
    """

    __slots__ = ("numeric", "anchor", "total", "count", "centroid")

    def __init__(
        self, feature: str, thresholds: Thresholds, anchor: int = design.MIN_BASELINE
    ) -> None:
        self.numeric = NumericMonitor(feature, thresholds)
        self.anchor = anchor
        self.total: np.ndarray | None = None
        self.count = 0
        self.centroid: np.ndarray | None = None

    def update(self, vector: np.ndarray, rng: random.Random) -> Alarm | None:
        centroid = self.centroid
        if centroid is None:
            self.total = vector.astype(np.float64) if self.total is None else self.total + vector
            self.count += 1
            if self.count >= self.anchor:
                self.centroid = self.total / self.count
                self.total = None
            return None
        if len(vector) != len(centroid):
            return None
        alarm = self.numeric.update(-float(vector.dot(centroid)), rng)
        if alarm is not None:
            self.centroid = None
            self.count = 0
        return alarm

    @property
    def score(self) -> float:
        return self.numeric.score

    def state_dict(self) -> dict[str, Any]:
        if self.centroid is None:
            return {}
        return {"centroid": self.centroid.tolist(), **self.numeric.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        centroid = np.asarray(state["centroid"], dtype=np.float64)
        if centroid.ndim != 1 or not np.all(np.isfinite(centroid)):
            raise ValueError("bad content centroid")
        self.numeric.load_state_dict(state)
        self.centroid = centroid


class CategoryMonitor(CategoryChange):
    """A categorical attribute (response model, fingerprint): alarms on a value that takes over."""

    __slots__ = ("feature",)

    def __init__(self, feature: str) -> None:
        super().__init__()
        self.feature = feature

    def alarm(self) -> Alarm:
        """The alarm of the value just confirmed (now known)."""
        return _alarm(self.feature, self)

    def state_dict(self) -> dict[str, Any]:
        return {
            "known": {str(k): v for k, v in self.known.items()},
            "n": self.n,
            "volatile": self.volatile,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        known = {str(k): int(v) for k, v in dict(state["known"]).items()}
        if len(known) > self.max_values:
            raise ValueError(f"too many values for {self.feature}")
        self.known = known
        self.n = int(state["n"])
        self.volatile = bool(state["volatile"])
