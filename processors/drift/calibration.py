"""Thresholds for a family-wise false-alarm rate: how many calls, on average, between false alarms.

Users count alerts, not tests, so the target ``arl`` (default ``design.ARL``) holds for a
stream's features of one kind together (content and performance have a budget each). The
budget is split evenly between the one-sided statistics of that kind (Bonferroni: the
alarm rates of rare, nearly independent alarms add up), so each statistic gets
``arl × statistics`` calls between false alarms, and its threshold comes from that.

Baselines start small (``design.MIN_BASELINE``) and grow, so every threshold is a
*schedule*: one value per size in ``design.REFERENCE_SIZES``, used from that size on. A
small baseline is a noisy one, which makes false alarms likelier (the baseline's error is
shared by every later call), so its thresholds are higher. Each schedule entry comes from
simulating the detector classes themselves (``detectors``), vectorised over streams, with
the estimation noise of a baseline of that size in the result; reproduce with
``python bench/drift.py --calibrate``:

* ``MeanCUSUM`` and ``VarianceCUSUM``: their inputs are normal scores of ranks within a
  reference of ``size`` values, so one simulation on uniform data covers every feature
  (ties are broken at random, so discrete features rank like continuous ones). Each of
  10,000 streams draws its own reference and keeps it (the real one grows, so this is the
  conservative side); 4,000 calls each. ``ln ARL`` is linear in the threshold
  (Siegmund's approximation), fitted where ARL ≥ 10⁴.
* ``BernoulliCUSUM``: the ARL depends on the true rate; for rates 0.2 %–50 %, from a
  baseline of ``size`` calls until it has doubled; the fit keeps the worst rate.
* ``TwoWindowKS``: the expected number of alarms is the per-test false-alarm probability
  times the tests per call, exactly, whatever the overlap between windows; the per-test
  probability is the Kolmogorov limit with Stephens' small-sample correction.

Category changes (a new response model or fingerprint) are facts, not statistical tests:
they take no share of the budget. The tests (tests/test_drift_quality.py) and the bench
re-check the resulting family-wise rate on whole streams, from their first call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from frictionlens.processors.drift import design
from frictionlens.processors.drift.detectors import (
    BernoulliCUSUM,
    DriftDetector,
    MeanCUSUM,
    VarianceCUSUM,
    normal_scores,
)


@dataclass(frozen=True, slots=True)
class Fit:
    """``ln ARL = intercept + slope · threshold``, fitted for ARLs of 10⁴ and more."""

    intercept: float
    slope: float

    def threshold(self, arl: float) -> float:
        return (math.log(arl) - self.intercept) / self.slope


# Fitted by `main()` below (seed 0), one per size of design.REFERENCE_SIZES.
FITS: dict[str, tuple[Fit, ...]] = {
    "mean": (
        Fit(intercept=1.4517, slope=1.1536),
        Fit(intercept=1.9293, slope=1.0129),
        Fit(intercept=1.7447, slope=1.0256),
        Fit(intercept=1.9525, slope=0.9949),
        Fit(intercept=2.2865, slope=0.9237),
    ),
    "variance": (
        Fit(intercept=1.2841, slope=1.9359),
        Fit(intercept=2.2334, slope=1.3974),
        Fit(intercept=2.6002, slope=1.2145),
        Fit(intercept=2.7807, slope=1.124),
        Fit(intercept=4.5412, slope=0.7502),
    ),
    "rate": (
        Fit(intercept=4.3404, slope=0.523),
        Fit(intercept=6.2138, slope=0.2795),
        Fit(intercept=6.0604, slope=0.3992),
        Fit(intercept=5.0253, slope=0.6164),
        Fit(intercept=4.3567, slope=0.7938),
    ),
}


def ks_threshold(
    arl: float,
    *,
    reference: int = design.FULL_BASELINE,
    window: int = design.WINDOW,
    every: int = design.KS_EVERY,
) -> float:
    """KS distance whose exceedance costs one false alarm per ``arl`` calls."""
    alpha = min(0.5, every / arl)
    ne = reference * window / (reference + window)
    lam = math.sqrt(math.log(2.0 / alpha) / 2.0)  # Kolmogorov tail 2·exp(-2λ²), first term
    return lam / (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne))


def ks_tail(
    d: float, *, reference: int = design.FULL_BASELINE, window: int = design.WINDOW
) -> float:
    """P(D > d) under no change (the same approximation, for checks)."""
    ne = reference * window / (reference + window)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    return min(
        1.0, 2.0 * sum((-1) ** (j - 1) * math.exp(-2.0 * j * j * lam * lam) for j in range(1, 101))
    )


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Threshold schedules (one value per ``design.REFERENCE_SIZES``) of every detector kind,
    for ``statistics`` one-sided statistics sharing one family-wise ARL."""

    schedules: dict[str, tuple[float, ...]]
    statistics: int

    def __getitem__(self, kind: str) -> tuple[float, ...]:
        return self.schedules[kind]


def thresholds(arl: float, *, statistics: int) -> Thresholds:
    """Split ``arl`` evenly over ``statistics`` one-sided statistics (at least one)."""
    statistics = max(1, statistics)
    each = arl * statistics
    schedules = {kind: tuple(fit.threshold(each) for fit in fits) for kind, fits in FITS.items()}
    schedules["ks"] = tuple(ks_threshold(each, reference=n) for n in design.REFERENCE_SIZES)
    return Thresholds(schedules, statistics)


# -- the simulations behind the constants ----------------------------------------------------
def simulate_scores(
    make: Callable[[np.ndarray], DriftDetector],
    levels: np.ndarray,
    size: int,
    *,
    chains: int = 10_000,
    steps: int = 4_000,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """False alarms at each threshold of ``levels`` of a score-fed detector, and calls.

    ``make(thresholds)`` builds the real detector; it runs on arrays of (level, stream).
    At ``FULL_BASELINE``, each stream ranks uniform values within its own reference of
    ``size`` uniform values, kept for ``steps`` calls (ranks make every continuous feature
    look alike). Below, the reference grows from ``size`` values to the next calibrated
    size, each value joining after it is scored: those sequential ranks are independent and
    uniform on 0..n whatever the data (Rényi), so they are drawn as such, about ``steps``
    calls a stream. (A reference that pauses while a CUSUM is high, ``design.FREEZE``, is
    not in this model; the whole-stream checks in the tests and the bench cover it.)
    """
    rng = np.random.default_rng(seed)
    det = make(np.asarray(levels, float)[:, None])
    det.statistic = np.zeros((len(levels), chains))
    alarms = np.zeros(len(levels))
    calls = 0

    def step(z: np.ndarray, counting: bool = True) -> None:
        det.update(z)
        fired = det.drift_detected
        if counting:
            alarms[:] += fired.sum(1)
        det.statistic[fired] = 0.0

    if size < design.FULL_BASELINE:
        end = min(n for n in design.REFERENCE_SIZES if n > size)
        grow = range(design.MIN_BASELINE, end)
        tables = [np.asarray(normal_scores(n)) for n in grow]
        for _ in range(max(1, steps // (end - size))):
            det.statistic = np.zeros((len(levels), chains))
            for n, table in zip(grow, tables):  # from the stream's start: its CUSUMs carry over
                counting = n >= size
                step(table[rng.integers(0, n + 1, chains)], counting)
                calls += chains * counting
        return alarms, calls
    offsets = 2.0 * np.arange(chains)
    flat = (np.sort(rng.random((chains, size)), axis=1) + offsets[:, None]).ravel()
    base = size * np.arange(chains)
    scores = np.asarray(normal_scores(size))
    for _ in range(steps):
        step(scores[np.searchsorted(flat, rng.random(chains) + offsets) - base])
    return alarms, chains * steps


def simulate_rate(
    levels: np.ndarray, rate: float, size: int, *, calls: int = 8_000_000, seed: int = 0
) -> tuple[np.ndarray, int]:
    """False alarms of ``BernoulliCUSUM`` at each threshold for a constant ``rate`` while its
    baseline has ``size`` calls or more, up to the next calibrated size (from full on:
    2,048 calls), and calls. Each stream starts as the stage's do: from ``MIN_BASELINE``."""
    rng = np.random.default_rng(seed)
    end = min((n for n in design.REFERENCE_SIZES if n > size), default=size)
    counted = 2_048 if size >= design.FULL_BASELINE else end - size
    chains = max(2_000, calls // counted)
    det = BernoulliCUSUM(np.asarray(levels, float)[:, None], warmup=design.MIN_BASELINE)
    for _ in range(design.MIN_BASELINE):
        det.update(rng.random(chains) < rate)
    det.statistic = np.zeros((len(levels), chains))
    alarms = np.zeros(len(levels))
    steps = 0
    while steps < counted:
        counting = det.n >= size
        det.update(rng.random(chains) < rate)
        fired = det.drift_detected
        if counting:
            alarms += fired.sum(1)
            steps += 1
        det.statistic[fired] = 0.0
    return alarms, chains * counted


def fit(levels: np.ndarray, alarms: np.ndarray, calls: int) -> Fit:
    """Weighted least-squares line through (threshold, ln ARL) for ARLs of 10⁴ and more.

    That is the range the thresholds are used in (a stream's ARL times its statistics);
    below it the line bends. Weights: √alarms, the precision of each log-rate.
    """
    levels, alarms = np.asarray(levels, float), np.asarray(alarms, float)
    keep = (alarms >= 20) & (alarms <= calls / 1e4)
    if keep.sum() < 2:  # too few alarms that rare: the two rarest measured points
        keep = np.zeros(len(alarms), bool)
        keep[np.flatnonzero(alarms >= 5)[-2:]] = True
    slope, intercept = np.polyfit(
        levels[keep], np.log(calls / alarms[keep]), 1, w=np.sqrt(alarms[keep])
    )
    return Fit(round(float(intercept), 4), round(float(slope), 4))


RATES = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
"""true failure rates the rate fit is the worst of"""


def main() -> None:  # pragma: no cover - offline calibration, minutes of CPU
    levels = np.arange(3.0, 17.0, 1.0)
    fits: dict[str, list[Fit]] = {"mean": [], "variance": [], "rate": []}
    for size in design.REFERENCE_SIZES:
        for kind, make in (
            ("mean", lambda h: MeanCUSUM(h)),
            ("variance", lambda h: VarianceCUSUM(h)),
        ):
            alarms, calls = simulate_scores(make, levels, size)
            fits[kind].append(fit(levels, alarms, calls))
            print(size, kind, _arls(levels, alarms, calls), flush=True)
        runs = [simulate_rate(levels, p, size) for p in RATES]
        # the worst rate at each threshold, per call
        worst = np.max([a / c for a, c in runs], axis=0) * runs[0][1]
        fits["rate"].append(fit(levels, worst, runs[0][1]))
        print(size, "rate (worst)", _arls(levels, worst, runs[0][1]), flush=True)
    print("FITS = {")
    for kind, row in fits.items():
        print(f'    "{kind}": (')
        for f in row:
            print(f"        {f!r},")
        print("    ),")
    print("}")


def _arls(levels: np.ndarray, alarms: np.ndarray, calls: int) -> str:
    return " ".join(f"h={h:g}:{calls / a:,.0f}({a:.0f})" for h, a in zip(levels, alarms) if a > 0)
