"""Detection quality by seeded simulation: the calibrated false-alarm rate, and delays within
the documented bounds.

The bounds are the medians of ``bench/drift.py`` (100 trials each) with about 35 % headroom
for the smaller samples here; the thresholds are the shipped ones (a stream with all 13
features sharing one false alarm per 10,000 calls):

====================================  ===============  ============  ===================
scenario                              monitor          bench median  median delay bound
====================================  ===============  ============  ===================
JSON validity 99 % -> 80 %            RateMonitor      26 calls      35 calls
mean length +1 sd                     NumericMonitor   23 calls      32 calls
length variance x2                    NumericMonitor   76 calls      105 calls
preamble rate 0 % -> 30 %             RateMonitor      6 calls       10 calls
half the outputs on a new topic       ContentMonitor   16 calls      25 calls
====================================  ===============  ============  ===================
"""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from frictionlens import semconv
from frictionlens.features.vectors import content_vector
from frictionlens.processors.drift.calibration import ks_tail, ks_threshold, thresholds
from frictionlens.processors.drift.monitors import ContentMonitor, NumericMonitor, RateMonitor
from frictionlens.processors.drift.stage import (
    KIND_OF,
    NUMERIC_FEATURES,
    RATE_FEATURES,
    DriftStage,
    StreamState,
)

STAGE = DriftStage()
SHIPPED = STAGE.thresholds[semconv.DRIFT_KIND_CONTENT]
PRE = 700


def test_thresholds_follow_the_budget():
    base = thresholds(10_000, statistics=19)
    stricter = thresholds(100_000, statistics=19)
    fewer = thresholds(10_000, statistics=1)
    for kind in ("rate", "mean", "variance", "ks"):
        for regime in (0, 1):
            assert stricter[kind][regime] > base[kind][regime] > fewer[kind][regime]
    assert SHIPPED.statistics == 19  # 7 rates + 4 statistics for each of 3 content features
    assert STAGE.thresholds[semconv.DRIFT_KIND_PERFORMANCE].statistics == 12
    for arl in (1e3, 1e5, 1e7):
        assert ks_tail(ks_threshold(arl)) * arl / 32 == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("tied", [False, True], ids=["continuous", "tied"])
def test_family_wise_false_alarm_rate_is_calibrated_from_the_first_calls(tied):
    """A stream with every feature stationary raises one false alarm per `arl` calls or fewer
    per kind (content, performance), counted from its first call; tied: few distinct values."""
    arl = 2_000.0  # per statistic 24,000-38,000: within the fitted range
    th = DriftStage(arl=arl).thresholds  # as the stage splits it, timing in medians
    probs = np.array([0.01, 0.02, 0.05, 0.1, 0.3, 0.005, 0.03])
    alarms = dict.fromkeys(th, 0)
    counted = 0
    for s in range(16):
        rng, nrng = random.Random(s), np.random.default_rng(s)
        stream = StreamState(th, RATE_FEATURES, NUMERIC_FEATURES)
        n = 10_000
        rates = (nrng.random((n, 7)) < probs).tolist()
        numeric = nrng.lognormal(0.0, 1.0, (n, 5))
        if tied:
            numeric = np.round(numeric * 2)
        numeric = numeric.tolist()
        vectors = nrng.standard_normal((n, 32))
        for i in range(n):
            out = stream.observe(rates[i], numeric[i], vectors[i], "m", "fp", None, rng)
            counted += 1
            for alarm in out:
                alarms[KIND_OF[alarm.feature]] += 1
    for kind, count in alarms.items():
        rate_times_arl = count / counted * arl
        assert rate_times_arl <= 1.3, (kind, rate_times_arl)  # target 1.0; about 80 alarms
        assert rate_times_arl >= 0.3, (kind, rate_times_arl)  # calibrated, not blind


def _median_delay(make, pre, post, trials=20, horizon=600) -> float:
    found = []
    for t in range(trials):
        rng, nrng = random.Random(t), np.random.default_rng(100 + t)
        mon = make()
        xs = np.concatenate([pre(nrng, PRE), post(nrng, horizon)])
        delay = math.inf
        for i, x in enumerate(xs):
            fired = mon(x, rng)
            if fired and i >= PRE:
                delay = i - PRE + 1
                break
        found.append(delay)
    return statistics.median(found)


def _rate(feature="x"):
    mon = RateMonitor(feature, SHIPPED)

    def update(x, rng):
        mon.update(bool(x))
        return mon.drift_detected and mon.alarm() is not None

    return update


def _numeric():
    mon = NumericMonitor("x", SHIPPED)
    return lambda x, rng: mon.update(float(x), rng) is not None


def test_rate_delays_are_within_bounds():
    json_validity = _median_delay(
        _rate, lambda r, n: r.random(n) < 0.01, lambda r, n: r.random(n) < 0.20
    )
    preamble = _median_delay(_rate, lambda r, n: np.zeros(n, bool), lambda r, n: r.random(n) < 0.30)
    assert json_validity <= 35
    assert preamble <= 10


def test_numeric_delays_are_within_bounds():
    mean = _median_delay(
        _numeric, lambda r, n: r.lognormal(6, 0.5, n), lambda r, n: r.lognormal(6.5, 0.5, n)
    )
    variance = _median_delay(
        _numeric,
        lambda r, n: r.standard_normal(n),
        lambda r, n: r.standard_normal(n) * math.sqrt(2),
        horizon=1_200,
    )
    assert mean <= 32
    assert variance <= 105


TOPICS = {
    "ops": "log rotate disk service daemon journal cron restart systemd config file size compress daily archive".split(),
    "code": "function variable return class import module error exception test loop array string parse value".split(),
    "billing": "invoice payment refund customer order shipping account billing card charge price discount".split(),
}
COMMON = "the a to of and in is it you that for on with this be can your will as if or".split()


def _vectors(rng: np.random.Generator, topics: list[str], n: int) -> np.ndarray:
    out = []
    for t in rng.integers(0, len(topics), n):
        words = [COMMON[i] for i in rng.integers(0, len(COMMON), 30)] + list(
            rng.choice(TOPICS[topics[t]], 25)
        )
        rng.shuffle(words)
        out.append(content_vector(" ".join(words)))
    return np.array(out)


def test_topic_shift_delay_is_within_bounds():
    rng = np.random.default_rng(9)
    before, after = (
        _vectors(rng, ["ops", "code"], 1_500),
        _vectors(rng, ["ops", "code", "billing", "billing"], 800),
    )

    def make():
        mon = ContentMonitor("content", SHIPPED)
        return lambda v, r: mon.update(v, r) is not None

    delay = _median_delay(
        make,
        lambda r, n: before[r.integers(0, len(before), n)],
        lambda r, n: after[r.integers(0, len(after), n)],
        trials=15,
        horizon=300,
    )
    assert delay <= 25
