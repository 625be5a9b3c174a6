"""Drift detectors: one small class per test on a ``DriftDetector`` base, in river's style.

``update(x)`` returns the detector; then ``drift_detected`` says whether it fires, and
``statistic`` and ``threshold`` (same units) say how close it is: ``score`` =
``statistic / threshold``, 1.0 at the alarm line, means the same for every detector.
Thresholds come from ``calibration``, which simulates these very classes: the CUSUMs'
``update`` is written without branches so that it runs on one float in the stage and on
arrays of simulated streams in the calibration.

Numeric features are not assumed to follow any distribution: a value is replaced by the
normal score of its rank among a reference sample of earlier values (``ReferenceSample``).
With no change, a new value is exchangeable with the reference, so its rank is uniform
whatever the feature (a permutation argument); ties are broken at random, which keeps the
rank uniform on discrete data too (token counts, short JSON lengths). One calibration per
reference size therefore serves every feature.

>>> det = MeanCUSUM(threshold=4.0)
>>> [det.update(z).drift_detected for z in (0.1, 2.0, 2.0, 2.0)]
[False, False, False, True]
>>> round(det.score, 2), det.run_length
(1.12, 3)
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Hashable, Sequence
from functools import lru_cache
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from frictionlens.processors.drift import design

_inv_normal = NormalDist().inv_cdf


@lru_cache(maxsize=8)
def normal_scores(size: int) -> tuple[float, ...]:
    """Φ⁻¹((r + ½) / (size + 1)) for every rank r = 0..size of a value among ``size`` others."""
    return tuple(_inv_normal((r + 0.5) / (size + 1)) for r in range(size + 1))


def at_size(schedule: Sequence[float], size: float) -> float:
    """The threshold of a ``schedule`` aligned with ``design.REFERENCE_SIZES`` for a baseline
    of ``size`` values: the largest calibrated size not above it."""
    return schedule[max(0, bisect_right(design.REFERENCE_SIZES, size) - 1)]


class DriftDetector:
    """A change detector: ``update(x)`` returns self; ``drift_detected`` after it.

    ``statistic`` grows with the evidence of a change, ``threshold`` is where it fires,
    ``run_length`` is how many updates the evidence built up over (about when the change
    began). ``name`` is the value of ``frictionlens.drift.statistic`` for its alarms.
    """

    __slots__ = ("threshold", "statistic", "run_length", "drift_detected")
    name: ClassVar[str] = ""

    def __init__(self, threshold: Any) -> None:
        self.threshold = threshold
        self.reset()

    def update(self, x: Any) -> DriftDetector:
        raise NotImplementedError

    @property
    def score(self) -> float:
        """``statistic / threshold``: 1.0 at the alarm line."""
        return self.statistic / self.threshold

    def reset(self) -> None:
        """Forget the evidence (the baseline, if the detector keeps one, too)."""
        self.statistic = 0.0
        self.run_length = 0
        self.drift_detected = False


class MeanCUSUM(DriftDetector):
    """Page's CUSUM (1954) for the mean of standard-normal scores moving by ``2·k`` sd.

    Sums ``sign·z - k`` (the log-likelihood ratio of N(±2k, 1) against N(0, 1), over 2k),
    floored at zero; ``sign`` +1 watches for a rise, -1 for a fall.

    >>> det = MeanCUSUM(2.5, sign=-1.0)
    >>> det.update(-2.0).update(-2.0).drift_detected
    True
    """

    __slots__ = ("sign", "k")

    def __init__(self, threshold: Any, *, sign: float = 1.0, k: float = design.MEAN_K) -> None:
        self.sign = sign
        self.k = k
        super().__init__(threshold)

    @property
    def name(self) -> str:  # type: ignore[override]
        return "cusum_mean_up" if self.sign > 0 else "cusum_mean_down"

    def update(self, z: Any) -> MeanCUSUM:
        s = self.statistic + self.sign * z - self.k
        rising = s > 0.0
        self.statistic = s * rising
        self.run_length = (self.run_length + 1) * rising
        self.drift_detected = s > self.threshold
        return self


class VarianceCUSUM(DriftDetector):
    """CUSUM for the variance of standard-normal scores growing ``ratio`` times.

    Sums the log-likelihood ratio of N(0, ratio) against N(0, 1),
    ``z²·(1 - 1/ratio)/2 - ln(ratio)/2``, floored at zero.

    >>> det = VarianceCUSUM(1.5)
    >>> det.update(0.1).drift_detected, det.update(3.0).drift_detected
    (False, True)
    """

    __slots__ = ("_a", "_b")
    name: ClassVar[str] = "cusum_variance"

    def __init__(self, threshold: Any, *, ratio: float = design.VARIANCE_RATIO) -> None:
        self._a = (1.0 - 1.0 / ratio) / 2.0
        self._b = math.log(ratio) / 2.0
        super().__init__(threshold)

    def update(self, z: Any) -> VarianceCUSUM:
        s = self.statistic + z * z * self._a - self._b
        rising = s > 0.0
        self.statistic = s * rising
        self.run_length = (self.run_length + 1) * rising
        self.drift_detected = s > self.threshold
        return self


class ReferenceSample:
    """A sorted sample of a feature's earlier (in-control) values, growing to ``size``.

    It is usable (``ready``) from ``design.MIN_BASELINE`` values on and keeps growing to
    ``size`` as older values are offered; once full, values offered replace a random member
    now and then: reservoir sampling over the last ``horizon`` values or so, so the baseline
    follows slow seasonal change (latency by time of day) but not a sudden shift. Which
    values are kept depends only on when they came, never on what they are, so the sample
    stays exchangeable with new values and the rank calibration holds.

    >>> ref = ReferenceSample(4)
    >>> for x in (3.0, 1.0, 2.0, 5.0):
    ...     ref.add(x, random.Random(0))
    >>> ref.full, list(ref.values), round(ref.score(4.0, random.Random(0)), 3)
    (True, [1.0, 2.0, 3.0, 5.0], 0.524)
    """

    __slots__ = ("size", "horizon", "values", "full", "seen", "skip", "_scores")

    def __init__(
        self, size: int = design.FULL_BASELINE, horizon: int = design.REFERENCE_HORIZON
    ) -> None:
        self.size = size
        self.horizon = horizon
        self.values = array("d")
        self.full = False
        self.seen = 0
        self.skip = 0
        """values still to pass over before the next replacement (``add`` counts it down)"""
        self._scores = normal_scores(size)

    @property
    def ready(self) -> bool:
        return len(self.values) >= min(design.MIN_BASELINE, self.size)

    def add(self, x: float, rng: random.Random) -> None:
        """Offer a value: kept while the sample grows, then now and then (see ``skip``)."""
        if self.full:
            self.skip -= 1
            if self.skip < 0:
                self.replace(x, rng)
            return
        insort(self.values, x)
        self.seen += 1
        if len(self.values) >= self.size:
            self.full = True
            self._draw_skip(rng)

    def replace(self, x: float, rng: random.Random) -> None:
        """Put ``x`` in place of a random member; draw the next ``skip``."""
        del self.values[int(rng.random() * self.size)]
        insort(self.values, x)
        self._draw_skip(rng)

    def _draw_skip(self, rng: random.Random) -> None:
        """Geometric gap to the next replacement: probability size / min(seen, horizon) each."""
        p = self.size / min(self.seen, self.horizon)
        self.skip = 0 if p >= 1.0 else int(math.log(1.0 - rng.random()) / math.log(1.0 - p))
        self.seen += self.skip + 1

    def score(self, x: float, rng: random.Random) -> float:
        """Normal score of ``x``'s rank among the sample, ties broken at random."""
        values = self.values
        n = len(values)
        rank = bisect_left(values, x)
        if rank < n and values[rank] == x:
            rank += int(rng.random() * (bisect_right(values, x, rank) - rank + 1))
        if n == self.size:
            return self._scores[rank]
        return _inv_normal((rank + 0.5) / (n + 1))

    def clear(self) -> None:
        self.values = array("d")
        self.full = False
        self.seen = self.skip = 0


class TwoWindowKS(DriftDetector):
    """Kolmogorov–Smirnov distance between the reference sample and the last ``window`` values.

    Catches changes of shape that leave mean and variance alone (a second mode, a new floor).
    Tested every ``every`` values once the window is full. The window is a ring: its members
    are ``values`` (NaN while it fills), the oldest at ``position``; ``evicted`` is the value
    the last update pushed out, old enough to join the reference.
    """

    __slots__ = ("reference", "every", "values", "count", "position", "due", "evicted")
    name: ClassVar[str] = "ks_distance"

    def __init__(
        self,
        reference: ReferenceSample,
        threshold: float,
        window: int = design.WINDOW,
        every: int = design.KS_EVERY,
    ) -> None:
        self.reference = reference
        self.every = every
        self.values = array("d", [math.nan]) * window
        super().__init__(threshold)

    def update(self, x: float) -> TwoWindowKS:
        values = self.values
        pos = self.position
        self.evicted = values[pos]
        values[pos] = x
        pos += 1
        self.position = 0 if pos == len(values) else pos
        self.count += 1
        self.due -= 1
        if not self.due:
            self.due = self.every
            if self.count >= len(values):
                self.run_length = len(values)
                self.statistic = ks_distance(
                    np.frombuffer(self.reference.values), np.frombuffer(values)
                )
                self.drift_detected = self.statistic > self.threshold
        return self

    def recent(self, age: int) -> float:
        """The value ``age`` updates before the latest one (NaN if the window has not seen it)."""
        return self.values[self.position - 1 - age]

    def reset(self) -> None:
        super().reset()
        self.values = array("d", [math.nan]) * len(self.values)
        self.count = self.position = 0
        self.due = self.every
        self.evicted = math.nan


def ks_distance(reference: np.ndarray, window: np.ndarray) -> float:
    """sup |F_ref - F_win| of two samples (``reference`` sorted); exact with ties."""
    win = np.sort(window)
    n, m = len(reference), len(win)
    # both sides in one array: on a small window numpy's per-call overhead is the cost
    # (the ndarray methods also skip np.searchsorted's dispatch)
    ref_rank, win_rank = reference.searchsorted, win.searchsorted
    gaps = np.abs(
        np.concatenate((ref_rank(win, "right"), ref_rank(win, "left"))) / n
        - np.concatenate((win_rank(win, "right"), win_rank(win, "left"))) / m
    )
    return float(gaps.max())


class BernoulliCUSUM(DriftDetector):
    """Upward CUSUM for a rate (Page's CUSUM on the Bernoulli log-likelihood ratio).

    Learns the baseline rate p0 from its first ``warmup`` values, then keeps learning from
    older values: they join the baseline in blocks of ``block``, one block late (so 1–2
    blocks after they were seen; a change is normally caught before it leaks in), and the
    baseline forgets by halves past ``memory`` values. It watches for the rate rising to
    ``p0 + shift·(1 - p0)``: ten points by default, the smallest rise worth an alert.
    ``schedule`` (thresholds aligned with ``design.REFERENCE_SIZES``) tightens the threshold
    as the baseline grows. ``update`` takes a bool, or arrays of them (the calibration).
    """

    __slots__ = (
        "schedule",
        "shift",
        "warmup",
        "block",
        "memory",
        "count",
        "n",
        "_hit",
        "_miss",
        "_current",
        "_current_n",
        "_previous",
    )
    name: ClassVar[str] = "cusum_rate"

    def __init__(
        self,
        threshold: Any,
        *,
        schedule: Sequence[float] | None = None,
        shift: float = design.RATE_SHIFT,
        warmup: int = design.MIN_BASELINE,
        block: int = design.RATE_BLOCK,
        memory: int = design.RATE_MEMORY,
    ) -> None:
        self.schedule = schedule
        self.shift = shift
        self.warmup = warmup
        self.block = block
        self.memory = memory
        super().__init__(threshold)

    @property
    def ready(self) -> bool:
        return self.n >= self.warmup

    @property
    def rate(self) -> Any:
        """The baseline rate p0 (Jeffreys estimate: never exactly 0 or 1)."""
        return (self.count + 0.5) / (self.n + 1.0)

    def update(self, x: Any) -> BernoulliCUSUM:
        if self.n < self.warmup:
            self.count = self.count + x
            self.n += 1
            if self.n >= self.warmup:
                self.weigh()
            return self
        s = self.statistic + self._miss + (self._hit - self._miss) * x
        rising = s > 0.0
        self.statistic = s * rising
        self.run_length = (self.run_length + 1) * rising
        self.drift_detected = s > self.threshold
        self._current = self._current + x
        self._current_n += 1
        if self._current_n == self.block:
            self._fold()
        return self

    def update_misses(self, count: int) -> BernoulliCUSUM:
        """``count`` misses in a row, as ``update(False)`` that many times but in a few steps.

        Failure signs are rare, so most calls are misses; a run of misses only lowers the
        statistic (no alarm), which can be applied at once, a block at a time.
        """
        if self.n < self.warmup:
            take = min(count, int(self.warmup - self.n))
            self.n += take
            count -= take
            if self.n >= self.warmup:
                self.weigh()
        while count > 0:
            take = min(count, self.block - self._current_n)
            s = self.statistic + take * self._miss
            if s > 0.0:
                self.statistic = s
                self.run_length += take
            else:
                self.statistic = 0.0
                self.run_length = 0
            self._current_n += take
            count -= take
            if self._current_n == self.block:
                self._fold()
        self.drift_detected = False
        return self

    def _fold(self) -> None:
        """The previous block joins the baseline; the current one waits a block."""
        if self._previous is not None:
            self.count = self.count + self._previous
            self.n += self.block
            if self.n > self.memory:
                self.count = self.count * 0.5
                self.n *= 0.5
        self._previous, self._current, self._current_n = self._current, 0, 0
        self.weigh()

    def weigh(self) -> None:
        """Log-likelihood ratios of a hit and a miss for the current baseline rate; the
        threshold for the current baseline size."""
        p0 = self.rate
        p1 = p0 + self.shift * (1.0 - p0)
        log = np.log if isinstance(p0, np.ndarray) else math.log
        self._hit = log(p1 / p0)
        self._miss = log((1.0 - p1) / (1.0 - p0))
        if self.schedule is not None:
            self.threshold = at_size(self.schedule, self.n)

    def reset(self) -> None:
        """Forget the baseline: re-learn it from the next ``warmup`` values."""
        super().reset()
        self.count = self.n = 0.0
        self._hit = self._miss = 0.0
        self._current = self._current_n = 0
        self._previous = None  # no block waiting yet


class CategoryChange(DriftDetector):
    """A new value (response model, system fingerprint) that takes over: a provider change.

    The values of the first ``baseline`` observations are known. From then on, a new value
    seen on ``confirm`` observations in a row fires at once (statistic: the run of
    sightings, threshold: ``confirm``), at any point of the stream's life. A new value that
    keeps alternating with known ones is a rotation: seen ``confirm`` times within
    ``window`` observations, it becomes known quietly. More than ``max_values`` distinct
    values in the baseline marks the category volatile (e.g. a templated prompt): it never
    fires.

    >>> det = CategoryChange(baseline=2)
    >>> [det.update(v).drift_detected for v in ("a", "a", "b", "a", "c", "c", "c")]
    [False, False, False, False, False, False, True]
    """

    __slots__ = (
        "baseline",
        "window",
        "max_values",
        "known",
        "pending",
        "n",
        "volatile",
        "first_seen",
        "new",
        "value",
    )
    name: ClassVar[str] = "new_value"

    def __init__(
        self,
        *,
        baseline: int = design.CATEGORY_BASELINE,
        confirm: int = design.CONFIRM,
        window: int = design.CATEGORY_WINDOW,
        max_values: int = design.MAX_VALUES,
    ) -> None:
        self.baseline = baseline
        self.window = window
        self.max_values = max_values
        self.known: dict[Hashable, int] = {}
        """known values -> observation index at which they became known"""
        self.pending: dict[Hashable, tuple[int, int]] = {}
        """unknown values -> (first sighting, sightings)"""
        self.n = 0
        self.volatile = False
        self.first_seen = 0
        """observation index of the current run's first sighting"""
        self.new = False
        """the last value was the first sighting of a value unknown to the baseline"""
        self.value: Hashable = None
        """the unknown value of the current run; the confirmed one after an alarm"""
        super().__init__(confirm)

    @property
    def ready(self) -> bool:
        return self.n >= self.baseline

    def update(self, x: Hashable) -> CategoryChange:
        self.n += 1
        self.new = self.drift_detected = False
        known = self.known
        if x in known:
            self.statistic = 0
            return self
        if self.n <= self.baseline:
            if len(known) >= self.max_values:
                self.volatile = True
            else:
                known[x] = self.n
            return self
        if self.volatile:
            return self
        first, count = self.pending.get(x, (self.n, 0))
        if self.n - first > self.window:
            first, count = self.n, 0
        self.new = count == 0
        count += 1
        if x == self.value and self.statistic:  # the run goes on
            self.statistic += 1
        else:
            self.statistic, self.value, self.first_seen = 1, x, self.n
        self.run_length = self.n - self.first_seen + 1
        if self.statistic < self.threshold and count < self.threshold:
            if x in self.pending or len(self.pending) < self.max_values:
                self.pending[x] = (first, count)
            return self
        self.pending.pop(x, None)
        if len(known) >= self.max_values:
            del known[next(iter(known))]  # the longest known goes
        known[x] = self.n
        self.drift_detected = self.statistic >= self.threshold  # else a rotation, learnt
        return self

    def reset(self) -> None:
        super().reset()
        self.known.clear()
        self.pending.clear()
        self.n = 0
        self.volatile = False
        self.first_seen = 0
        self.new = False
        self.value = None
