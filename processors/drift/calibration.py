"""Thresholds for a family-wise false-alarm rate: how many calls, on average, between false alarms.

Users count alerts, not tests, so the target ``arl`` (default 10,000 calls) holds for a
stream with all its detectors together. The budget is split evenly between the one-sided
statistics of the stream (Bonferroni: the alarm rates of rare, nearly independent alarms
add up), so each statistic gets ``arl × statistics`` calls between false alarms, and its
threshold comes from that.

How each threshold follows from its own ARL (all by simulation of the detectors' exact
arithmetic, including the noise of a baseline learned from ``WARMUP`` calls; reproduce
with ``python bench/drift.py --calibrate``):

* ``MeanVarianceCUSUM`` (each mean side, and the variance): its scores are ranks
  within a 512-value reference, so one simulation on uniform data covers every feature.
  20,000 streams × 6,000 calls; the log of the ARL is linear in the threshold
  (``ln ARL = a + b·h``, Siegmund's approximation), fitted on ARLs from 10⁴ up to where
  alarms get scarce (about 3·10⁵), the range a stream's thresholds fall in.
* ``BernoulliCUSUM``: the ARL depends on the true rate; 8,000 streams × 10,000 calls after
  warm-up for rates 0.2 %–50 %; the fit keeps the worst rate at each threshold.
* ``TwoWindowKS``: the expected number of alarms is the per-test false-alarm probability
  times the tests per call, exactly, whatever the overlap between windows; the per-test
  probability is the Kolmogorov limit with Stephens' small-sample correction.

Category changes (a new response model or fingerprint) are facts, not statistical tests:
they take no share of the budget.

The fits are shipped as constants below. The tests (tests/test_drift_quality.py) and the
bench re-check the resulting family-wise rate, KS included, by seeded simulation of the
real detectors on whole streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from frictionlens.processors.drift.detectors import normal_scores

WARMUP = 512
"""calls before a baseline is trusted, and the size of a numeric reference sample"""
WINDOW = 64
"""recent values compared with the reference by the KS test; also how old a value must be to
join the baseline"""
KS_EVERY = 32
"""calls between two KS tests"""
MEAN_K = 0.5
"""mean CUSUM reference value: tuned for a shift of one standard deviation"""
VARIANCE_RATIO = 2.0
"""variance CUSUM design: the variance doubling"""
RATE_SHIFT = 0.1
"""BernoulliCUSUM design: the rate rising by ten points"""


@dataclass(frozen=True, slots=True)
class Fit:
    """``ln ARL = intercept + slope · threshold``; fitted for ARLs of 10⁴–10⁶ (thresholds 6–12)."""

    intercept: float
    slope: float

    def threshold(self, arl: float) -> float:
        return (math.log(arl) - self.intercept) / self.slope


# Fitted by `main()` below (seed 0); see the module docstring.
MEAN_FIT = Fit(intercept=2.2519, slope=0.9246)
VARIANCE_FIT = Fit(intercept=4.3205, slope=0.7856)
BERNOULLI_FIT = Fit(intercept=3.651, slope=0.9328)


def ks_threshold(
    arl: float, *, reference: int = WARMUP, window: int = WINDOW, every: int = KS_EVERY
) -> float:
    """KS distance whose exceedance costs one false alarm per ``arl`` calls."""
    alpha = min(0.5, every / arl)
    ne = reference * window / (reference + window)
    lam = math.sqrt(math.log(2.0 / alpha) / 2.0)  # Kolmogorov tail 2·exp(-2λ²), first term
    return lam / (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne))


def ks_tail(d: float, *, reference: int = WARMUP, window: int = WINDOW) -> float:
    """P(D > d) under no change (the same approximation, for checks)."""
    ne = reference * window / (reference + window)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    return min(
        1.0, 2.0 * sum((-1) ** (j - 1) * math.exp(-2.0 * j * j * lam * lam) for j in range(1, 101))
    )


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Thresholds of every detector kind for one family-wise ARL."""

    rate: float
    mean: float
    variance: float
    ks: float
    statistics: int


def thresholds(arl: float, *, rates: int, numeric: int) -> Thresholds:
    """Split a stream's ``arl`` over ``rates`` rate features and ``numeric`` numeric features.

    A rate feature is one statistic; a numeric one is four (mean up, mean down, variance,
    KS), each with the same share of the budget.
    """
    statistics = max(1, rates + 4 * numeric)
    each = arl * statistics
    return Thresholds(
        rate=BERNOULLI_FIT.threshold(each),
        mean=MEAN_FIT.threshold(each),
        variance=VARIANCE_FIT.threshold(each),
        ks=ks_threshold(each),
        statistics=statistics,
    )


# -- the simulations behind the constants ----------------------------------------------------
def simulate_rank_cusums(
    levels: np.ndarray,
    *,
    size: int = WARMUP,
    chains: int = 20_000,
    steps: int = 6_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Alarms of one mean side and of the variance of MeanVarianceCUSUM at each threshold, and calls.

    Each stream draws its own reference sample (so the baseline's estimation noise is in
    the result); values are uniform: ranks make every continuous feature look alike.
    """
    rng = np.random.default_rng(seed)
    offsets = 2.0 * np.arange(chains)
    flat = (np.sort(rng.random((chains, size)), axis=1) + offsets[:, None]).ravel()
    base = size * np.arange(chains)
    scores = np.asarray(normal_scores(size))
    a, b = (1.0 - 1.0 / VARIANCE_RATIO) / 2.0, math.log(VARIANCE_RATIO) / 2.0
    levels = np.asarray(levels, float)[:, None]
    mean = np.zeros((len(levels), chains))
    var = np.zeros_like(mean)
    mean_alarms = np.zeros(len(levels))
    var_alarms = np.zeros(len(levels))
    for _ in range(steps):
        z = scores[2 * (np.searchsorted(flat, rng.random(chains) + offsets) - base)]
        mean = np.maximum(0.0, mean + z - MEAN_K)
        var = np.maximum(0.0, var + z * z * a - b)
        fired = mean > levels
        mean_alarms += fired.sum(1)
        mean[fired] = 0.0
        fired = var > levels
        var_alarms += fired.sum(1)
        var[fired] = 0.0
    return mean_alarms, var_alarms, chains * steps


def simulate_bernoulli(
    levels: np.ndarray,
    rate: float,
    *,
    chains: int = 8_000,
    steps: int = 10_000,
    seed: int = 0,
    warmup: int = WARMUP,
    block: int = 32,
    memory: int = 4096,
) -> tuple[np.ndarray, int]:
    """Alarms of BernoulliCUSUM at each threshold for a stream with a constant ``rate``, and calls.

    Mirrors the detector: a baseline from ``warmup`` calls, then blocks of ``block`` calls
    join it one block late, halved past ``memory``; weights refreshed at each block.
    """
    rng = np.random.default_rng(seed)
    count = rng.binomial(warmup, rate, chains).astype(float)
    n = float(warmup)
    current = np.zeros(chains)
    previous: np.ndarray | None = None
    levels = np.asarray(levels, float)[:, None]
    stat = np.zeros((len(levels), chains))
    alarms = np.zeros(len(levels))
    for t in range(steps):
        if t % block == 0:
            if t:
                if previous is not None:
                    count += previous
                    n += block
                    if n > memory:
                        count *= 0.5
                        n *= 0.5
                previous, current = current, np.zeros(chains)
            p0 = (count + 0.5) / (n + 1.0)
            p1 = p0 + RATE_SHIFT * (1.0 - p0)
            hit, miss = np.log(p1 / p0), np.log((1.0 - p1) / (1.0 - p0))
        x = rng.random(chains) < rate
        stat = np.maximum(0.0, stat + np.where(x, hit, miss))
        fired = stat > levels
        alarms += fired.sum(1)
        stat[fired] = 0.0
        current += x
    return alarms, chains * steps


def fit(levels: np.ndarray, alarms: np.ndarray, calls: int) -> Fit:
    """Weighted least-squares line through (threshold, ln ARL) for ARLs of 10⁴ and more.

    That is the range the thresholds are used in (a stream's ARL times its statistics);
    below it the line bends. Weights: √alarms, the precision of each log-rate.
    """
    levels, alarms = np.asarray(levels, float), np.asarray(alarms, float)
    keep = (alarms >= 50) & (alarms <= calls / 1e4)
    slope, intercept = np.polyfit(
        levels[keep], np.log(calls / alarms[keep]), 1, w=np.sqrt(alarms[keep])
    )
    return Fit(round(float(intercept), 4), round(float(slope), 4))


def main() -> None:  # pragma: no cover - offline calibration, minutes of CPU
    levels = np.arange(6.0, 12.5, 0.5)
    mean_alarms, var_alarms, calls = simulate_rank_cusums(levels)
    rates = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    runs = [simulate_bernoulli(levels, p) for p in rates]
    worst = np.max([a for a, _ in runs], axis=0)
    print("MEAN_FIT =", fit(levels, mean_alarms, calls))
    print("VARIANCE_FIT =", fit(levels, var_alarms, calls))
    print("BERNOULLI_FIT =", fit(levels, worst, runs[0][1]))
    for name, alarms, n in (
        ("mean", mean_alarms, calls),
        ("variance", var_alarms, calls),
        ("rate (worst)", worst, runs[0][1]),
    ):
        print(
            name,
            " ".join(f"h={h:g}:ARL={n / a:,.0f}({a:.0f})" for h, a in zip(levels, alarms) if a > 0),
        )
