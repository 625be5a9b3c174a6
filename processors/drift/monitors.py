"""One monitor per feature of a stream: its detectors, warm-up, re-anchoring and saved baseline.

A monitor raises at most one ``Alarm`` per change: when any of its detectors fires, the
feature's baseline is dropped and re-learnt from the calls that follow (the new normal),
so a lasting change is reported once, not once per call.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from frictionlens.processors.drift.calibration import KS_EVERY, WINDOW, Thresholds
from frictionlens.processors.drift.detectors import (
    BernoulliCUSUM,
    CategoryChange,
    MeanVarianceCUSUM,
    ReferenceSample,
    TwoWindowKS,
)

# values of frictionlens.drift.statistic
STAT_RATE = "cusum_rate"
STAT_MEAN_UP = "cusum_mean_up"
STAT_MEAN_DOWN = "cusum_mean_down"
STAT_VARIANCE = "cusum_variance"
STAT_KS = "ks_distance"
STAT_NEW_VALUE = "new_value"


@dataclass(frozen=True, slots=True)
class Alarm:
    feature: str
    statistic: str
    value: float
    threshold: float
    run_length: int
    """calls the evidence built up over: the change began about this many calls ago"""


class RateMonitor(BernoulliCUSUM):
    """A rate of a failure sign (format invalid, preamble, refusal…): upward changes only.

    A falling failure rate is good news and costs no false-alarm budget.
    """

    __slots__ = ("feature",)

    def __init__(self, feature: str, thresholds: Thresholds, warmup: int) -> None:
        super().__init__(thresholds.rate, warmup=warmup)
        self.feature = feature

    def alarm(self) -> Alarm:
        """The alarm of the change just detected; the baseline starts over."""
        alarm = Alarm(self.feature, STAT_RATE, self.statistic, self.threshold, self.run_length)
        self.reset()
        return alarm

    @property
    def score(self) -> float:
        return self.statistic / self.threshold

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
    """A numeric feature: mean (both ways), variance (up) and shape (KS) against a reference.

    Values are ranked within the reference sample, so lengths, latencies and similarity
    scores need no transformation and no distribution assumption.
    """

    __slots__ = ("feature", "reference", "cusum", "ks")

    def __init__(self, feature: str, thresholds: Thresholds, warmup: int) -> None:
        self.feature = feature
        self.reference = ReferenceSample(warmup)
        self.cusum = MeanVarianceCUSUM(thresholds.mean, thresholds.variance)
        self.ks = TwoWindowKS(self.reference, thresholds.ks, window=WINDOW, every=KS_EVERY)

    def update(self, x: float, rng: random.Random) -> Alarm | None:
        ref = self.reference
        if not ref.full:
            ref.add(x, rng)
            return None
        cusum, ks = self.cusum, self.ks
        cusum.update(ref.score(x))
        old = ks.update(x)
        if old == old:  # not NaN: it left the full window and may join the reference
            ref.skip -= 1  # ReferenceSample.add, inlined: this runs on every call
            if ref.skip < 0:
                ref.replace(old, rng)
        if cusum.drift_detected or ks.drift_detected:
            return self._alarm()
        return None

    def _alarm(self) -> Alarm:
        c, ks = self.cusum, self.ks
        candidates = (
            Alarm(self.feature, STAT_MEAN_UP, c.upper, c.mean_threshold, c.run_upper),
            Alarm(self.feature, STAT_MEAN_DOWN, c.lower, c.mean_threshold, c.run_lower),
            Alarm(self.feature, STAT_VARIANCE, c.variance, c.variance_threshold, c.run_variance),
            Alarm(self.feature, STAT_KS, ks.statistic, ks.threshold, ks.run_length),
        )
        alarm = max(candidates, key=lambda a: a.value / a.threshold)
        self.reanchor()
        return alarm

    def reanchor(self) -> None:
        """Drop the baseline: the next ``warmup`` values are the new normal."""
        self.reference.clear()
        self.cusum.reset()
        self.ks.reset()

    @property
    def score(self) -> float:
        if not self.reference.full:
            return 0.0
        return max(self.cusum.score, self.ks.statistic / self.ks.threshold)

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


class ContentMonitor:
    """Content drift: how unlike the route's usual outputs each output is.

    The first ``anchor`` vectors fix a centroid; from then on each output's dissimilarity
    (minus its dot product with the centroid) is a numeric feature. Because the centroid is
    frozen before the reference dissimilarities are collected, a new output's dissimilarity
    is exchangeable with them when nothing changed, and the rank calibration holds exactly.
    """

    __slots__ = ("numeric", "anchor", "total", "count", "centroid")

    def __init__(self, feature: str, thresholds: Thresholds, warmup: int, anchor: int = 64) -> None:
        self.numeric = NumericMonitor(feature, thresholds, warmup)
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
    """A categorical attribute (response model, fingerprint): alerts on a confirmed new value."""

    __slots__ = ("feature",)

    def __init__(self, feature: str, warmup: int) -> None:
        super().__init__(warmup=warmup)
        self.feature = feature

    def alarm(self) -> Alarm:
        """The alarm of the value just confirmed (now known)."""
        alarm = Alarm(
            self.feature,
            STAT_NEW_VALUE,
            float(self.statistic),
            float(self.confirm),
            self.run_length,
        )
        self.statistic = 0
        return alarm

    @property
    def score(self) -> float:
        """Sightings of the latest unknown value over ``confirm``, while within its window."""
        return self.statistic / self.confirm if self.n - self.first_seen <= self.window else 0.0

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
