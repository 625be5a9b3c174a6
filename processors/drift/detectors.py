"""Drift detectors: one small class per test, in river's style (``update(x)``, then ``drift_detected``).

Every detector keeps a ``statistic`` and a ``threshold`` in the same units, so
``statistic / threshold`` (the drift score) means the same thing for every detector: at 1.0
it fires. Thresholds come from ``calibration`` so that all the detectors of a stream
together raise one false alarm per ``arl`` calls on an unchanged stream.

Numeric features are not assumed to follow any distribution: a value is replaced by the
normal score of its rank among a reference sample of earlier values (``ReferenceSample``).
With no change, a new value is exchangeable with the reference, so its rank is uniform
whatever the feature (a permutation argument) and one calibration serves every feature;
the CUSUMs then run on scores that are standard normal under the baseline.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Hashable
from functools import lru_cache
from statistics import NormalDist

import numpy as np

BLOCK = 32
"""values a BernoulliCUSUM folds into its baseline at a time"""


@lru_cache(maxsize=8)
def normal_scores(size: int) -> tuple[float, ...]:
    """Φ⁻¹((r + ½) / (size + 1)) for every half-integer mid-rank r = j/2, j = 0..2·size."""
    inv = NormalDist().inv_cdf
    return tuple(inv((j / 2 + 0.5) / (size + 1)) for j in range(2 * size + 1))


class ReferenceSample:
    """A sorted, uniform sample of a feature's earlier (in-control) values.

    Filled by the first ``size`` values (the warm-up); afterwards values that are old enough
    (they left the recent window unflagged) replace a random member now and then: reservoir
    sampling over the last ``horizon`` values or so, so the baseline follows slow seasonal
    change (latency by time of day) but not a sudden shift. Which values are kept depends
    only on when they came, never on what they are, so the sample stays exchangeable with
    new values and the rank calibration holds.
    """

    __slots__ = ("size", "horizon", "values", "full", "seen", "skip", "_scores")

    def __init__(self, size: int = 512, horizon: int = 4096) -> None:
        self.size = size
        self.horizon = horizon
        self.values = array("d")
        self.full = False
        self.seen = 0
        self.skip = 0
        """values still to pass over before the next replacement (``add`` counts it down;
        a hot loop may too, calling ``replace`` when it goes negative)"""
        self._scores = normal_scores(size)

    @property
    def ready(self) -> bool:
        return self.full

    def add(self, x: float, rng: random.Random) -> None:
        """Offer a value: kept while filling, then now and then (see ``skip``)."""
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

    def score(self, x: float) -> float:
        """Normal score of ``x``'s mid-rank (ties share their mean rank). Needs ``full``."""
        values = self.values
        lo = bisect_left(values, x)
        if lo < self.size and values[lo] == x:
            return self._scores[lo + bisect_right(values, x, lo)]
        return self._scores[2 * lo]

    def clear(self) -> None:
        self.values = array("d")
        self.full = False
        self.seen = self.skip = 0


class MeanVarianceCUSUM:
    """CUSUMs (Page, 1954) for the mean shifting by ±``2·k`` sd and for the variance growing
    ``ratio`` times, on scores that are standard normal under the baseline.

    Three one-sided statistics, each floored at zero: ``upper`` and ``lower`` sum ``±z - k``
    (the log-likelihood ratio of N(±2k, 1) against N(0, 1), over 2k); ``variance`` sums the
    log-likelihood ratio of N(0, ratio) against N(0, 1), ``z²·(1 - 1/ratio)/2 - ln(ratio)/2``.
    Each ``run_*`` is how long its statistic has been rising: when the change probably began.
    """

    __slots__ = (
        "mean_threshold",
        "variance_threshold",
        "k",
        "ratio",
        "upper",
        "lower",
        "variance",
        "run_upper",
        "run_lower",
        "run_variance",
        "drift_detected",
        "_a",
        "_b",
    )

    def __init__(
        self,
        mean_threshold: float,
        variance_threshold: float,
        *,
        k: float = 0.5,
        ratio: float = 2.0,
    ) -> None:
        self.mean_threshold = mean_threshold
        self.variance_threshold = variance_threshold
        self.k = k
        self.ratio = ratio
        self._a = (1.0 - 1.0 / ratio) / 2.0
        self._b = math.log(ratio) / 2.0
        self.reset()

    def update(self, z: float) -> None:
        up = self.upper + z - self.k
        if up > 0.0:
            self.upper = up
            self.run_upper += 1
        else:
            self.upper = 0.0
            self.run_upper = 0
        down = self.lower - z - self.k
        if down > 0.0:
            self.lower = down
            self.run_lower += 1
        else:
            self.lower = 0.0
            self.run_lower = 0
        var = self.variance + z * z * self._a - self._b
        if var > 0.0:
            self.variance = var
            self.run_variance += 1
        else:
            self.variance = 0.0
            self.run_variance = 0
        threshold = self.mean_threshold
        self.drift_detected = up > threshold or down > threshold or var > self.variance_threshold

    @property
    def score(self) -> float:
        """The largest statistic over its threshold."""
        return max(
            self.upper / self.mean_threshold,
            self.lower / self.mean_threshold,
            self.variance / self.variance_threshold,
        )

    def reset(self) -> None:
        self.upper = self.lower = self.variance = 0.0
        self.run_upper = self.run_lower = self.run_variance = 0
        self.drift_detected = False


class TwoWindowKS:
    """Kolmogorov–Smirnov distance between the reference sample and the last ``window`` values.

    Catches changes of shape that leave mean and variance alone (a second mode, a new floor).
    Tested every ``every`` values once the window is full; ``update`` returns the value that
    left the window (NaN while it fills), old enough to join the reference.
    """

    __slots__ = (
        "reference",
        "threshold",
        "every",
        "values",
        "count",
        "position",
        "due",
        "statistic",
        "drift_detected",
    )

    def __init__(
        self, reference: ReferenceSample, threshold: float, window: int = 64, every: int = 32
    ) -> None:
        self.reference = reference
        self.threshold = threshold
        self.every = every
        self.values = array("d", [math.nan]) * window
        self.count = 0
        self.position = 0
        self.due = every
        self.statistic = 0.0
        self.drift_detected = False

    @property
    def run_length(self) -> int:
        return min(self.count, len(self.values))

    def update(self, x: float) -> float:
        values = self.values
        pos = self.position
        old = values[pos]
        values[pos] = x
        pos += 1
        self.position = 0 if pos == len(values) else pos
        self.count += 1
        self.due -= 1
        if not self.due:
            self.due = self.every
            if self.count >= len(values):
                self.statistic = ks_distance(
                    np.frombuffer(self.reference.values), np.frombuffer(values)
                )
                self.drift_detected = self.statistic > self.threshold
        return old

    def reset(self) -> None:
        self.values = array("d", [math.nan]) * len(self.values)
        self.count = self.position = 0
        self.due = self.every
        self.statistic = 0.0
        self.drift_detected = False


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


class BernoulliCUSUM:
    """Upward CUSUM for a rate (Page's CUSUM on the Bernoulli log-likelihood ratio).

    Learns the baseline rate p0 from its first ``warmup`` values, then keeps learning from
    older values: they join the baseline in blocks of ``block``, one block late (so 1–2
    blocks after they were seen; a change is normally caught before it leaks in), and the
    baseline forgets by halves past ``memory`` values. It watches for the rate rising to
    ``p0 + shift·(1 - p0)``: ten points by default, the smallest rise worth an alert.
    """

    __slots__ = (
        "threshold",
        "shift",
        "warmup",
        "block",
        "memory",
        "count",
        "n",
        "statistic",
        "run_length",
        "drift_detected",
        "_hit",
        "_miss",
        "_current",
        "_current_n",
        "_previous",
    )

    def __init__(
        self,
        threshold: float,
        *,
        shift: float = 0.1,
        warmup: int = 512,
        block: int = BLOCK,
        memory: int = 4096,
    ) -> None:
        self.threshold = threshold
        self.shift = shift
        self.warmup = warmup
        self.block = block
        self.memory = memory
        self.count = 0.0
        self.n = 0.0
        self.statistic = 0.0
        self.run_length = 0
        self.drift_detected = False
        self._hit = self._miss = 0.0
        self._current = self._current_n = 0
        self._previous = -1  # no block waiting yet

    @property
    def ready(self) -> bool:
        return self.n >= self.warmup

    @property
    def rate(self) -> float:
        """The baseline rate p0 (Jeffreys estimate: never exactly 0 or 1)."""
        return (self.count + 0.5) / (self.n + 1.0)

    def update(self, x: bool) -> None:
        if self.n < self.warmup:
            self.count += x
            self.n += 1
            if self.n >= self.warmup:
                self.weigh()
            return
        s = self.statistic + (self._hit if x else self._miss)
        if s > 0.0:
            self.statistic = s
            self.run_length += 1
        else:
            self.statistic = 0.0
            self.run_length = 0
        self.drift_detected = s > self.threshold
        self._current += x
        self._current_n += 1
        if self._current_n == self.block:
            self._fold()

    def update_misses(self, count: int) -> None:
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

    def _fold(self) -> None:
        """The previous block joins the baseline; the current one waits a block."""
        if self._previous >= 0:
            self.count += self._previous
            self.n += self.block
            if self.n > self.memory:
                self.count *= 0.5
                self.n *= 0.5
        self._previous, self._current, self._current_n = self._current, 0, 0
        self.weigh()

    def weigh(self) -> None:
        """Log-likelihood ratios of a hit and a miss for the current baseline rate."""
        p0 = self.rate
        p1 = p0 + self.shift * (1.0 - p0)
        self._hit = math.log(p1 / p0)
        self._miss = math.log((1.0 - p1) / (1.0 - p0))

    def reset(self) -> None:
        """Forget the baseline: re-learn it from the next ``warmup`` values."""
        self.count = self.n = 0.0
        self.statistic = 0.0
        self.run_length = 0
        self.drift_detected = False
        self._current = self._current_n = 0
        self._previous = -1


class CategoryChange:
    """Notices a value (response model, system fingerprint) that the baseline never saw.

    The values of the first ``warmup`` observations are known; a new one is confirmed once
    seen ``confirm`` times within ``window`` observations of its first sighting (one-off
    values do not alert), then it becomes known. More than ``max_values`` distinct values in
    the warm-up marks the category volatile (e.g. a templated system prompt): it never alerts.
    """

    __slots__ = (
        "warmup",
        "confirm",
        "window",
        "max_values",
        "known",
        "pending",
        "n",
        "volatile",
        "statistic",
        "first_seen",
        "new",
        "run_length",
        "drift_detected",
        "value",
    )

    def __init__(
        self, *, warmup: int = 512, confirm: int = 3, window: int = 256, max_values: int = 16
    ) -> None:
        self.warmup = warmup
        self.confirm = confirm
        self.window = window
        self.max_values = max_values
        self.known: dict[Hashable, int] = {}
        """known values -> observation index at which they became known"""
        self.pending: dict[Hashable, tuple[int, int]] = {}
        """unknown values -> (first sighting, sightings)"""
        self.n = 0
        self.volatile = False
        self.statistic = 0
        """sightings of the latest unknown value"""
        self.first_seen = 0
        """observation index of that value's first sighting"""
        self.new = False
        """the last value was the first sighting of a value unknown to the baseline"""
        self.run_length = 0
        """observations since the confirmed value's first sighting (at an alert)"""
        self.drift_detected = False
        self.value: Hashable = None
        """the value confirmed by the latest alert"""

    @property
    def ready(self) -> bool:
        return self.n >= self.warmup

    @property
    def threshold(self) -> int:
        return self.confirm

    def update(self, x: Hashable) -> None:
        self.n += 1
        if x in self.known:
            self.new = self.drift_detected = False
            return
        self.new = self.drift_detected = False
        known = self.known
        if self.n <= self.warmup:
            if len(known) >= self.max_values:
                self.volatile = True
            else:
                known[x] = self.n
            return
        if self.volatile:
            return
        first, count = self.pending.get(x, (self.n, 0))
        if self.n - first > self.window:
            first, count = self.n, 0
        self.new = count == 0
        count += 1
        self.statistic, self.first_seen = count, first
        if count < self.confirm:
            if x in self.pending or len(self.pending) < self.max_values:
                self.pending[x] = (first, count)
            return
        self.pending.pop(x, None)
        if len(known) >= self.max_values:
            del known[next(iter(known))]  # the longest known goes
        known[x] = self.n
        self.value = x
        self.run_length = self.n - first
        self.drift_detected = True

    def reset(self) -> None:
        self.known.clear()
        self.pending.clear()
        self.n = 0
        self.volatile = False
        self.statistic = self.first_seen = 0
        self.new = self.drift_detected = False
