"""The drift detectors one by one, on seeded simulated data."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from frictionlens.features.vectors import DIMS, MAX_CHARS, content_vector
from frictionlens.processors.drift.detectors import (
    BernoulliCUSUM,
    CategoryChange,
    MeanCUSUM,
    ReferenceSample,
    TwoWindowKS,
    VarianceCUSUM,
    ks_distance,
)


def _filled(values, size=512, seed=0) -> ReferenceSample:
    ref = ReferenceSample(size)
    rng = random.Random(seed)
    for v in values:
        ref.add(v, rng)
    return ref


def test_rank_scores_are_standard_normal_whatever_the_distribution():
    rng = np.random.default_rng(1)
    for draw in (
        lambda n: rng.standard_normal(n),
        lambda n: rng.exponential(size=n),
        lambda n: rng.lognormal(3, 2, n),
    ):
        z = []
        for seed in range(
            10
        ):  # one reference is noisy (the calibration knows); their average is not
            ref = _filled(draw(512), seed=seed)
            assert ref.ready
            z += [ref.score(x, random.Random(seed)) for x in draw(1000)]
        assert abs(statistics.fmean(z)) < 0.05
        assert 0.93 < statistics.pvariance(z) < 1.07


def test_ties_are_ranked_at_random_so_discrete_values_rank_uniformly():
    """Few distinct values (short JSON lengths): the ranks of new values stay uniform."""
    rng = random.Random(0)
    nrng = np.random.default_rng(0)
    ranks = []
    for seed in range(20):
        ref = _filled(nrng.integers(40, 44, 512).astype(float), seed=seed)
        for x in nrng.integers(40, 44, 500).astype(float):
            ranks.append(ref.score(x, rng))
    assert abs(statistics.fmean(ranks)) < 0.05
    assert 0.93 < statistics.pvariance(ranks) < 1.07


def test_sequential_ranks_while_the_reference_grows_are_uniform():
    """Each value scored against all before it, then added: the scores are standard normal."""
    rng = random.Random(1)
    nrng = np.random.default_rng(1)
    z = []
    for _ in range(40):
        ref = _filled(nrng.lognormal(0, 1, 32), seed=1)
        for x in nrng.lognormal(0, 1, 200):
            z.append(ref.score(x, rng))
            ref.add(x, rng)
    assert abs(statistics.fmean(z)) < 0.05
    assert 0.93 < statistics.pvariance(z) < 1.07


def test_reference_keeps_its_size_and_order_while_it_refreshes():
    rng = random.Random(2)
    ref = _filled([rng.random() for _ in range(512)])
    for _ in range(20_000):
        ref.add(rng.random() + 10.0, rng)  # later values, all larger
    values = list(ref.values)
    assert len(values) == 512 and values == sorted(values)
    newer = sum(v >= 10.0 for v in values)
    assert 450 < newer < 512  # the horizon (4096) forgets most of the warm-up, not all at once


def _delay(detector, pre, post) -> int | None:
    for x in pre:
        detector.update(x)
        assert not detector.drift_detected
    for i, x in enumerate(post, 1):
        detector.update(x)
        if detector.drift_detected:
            return i
    return None


def test_mean_cusum_finds_a_one_sigma_shift_both_ways():
    rng = np.random.default_rng(3)
    for sign in (1.0, -1.0):
        delays = [
            _delay(
                MeanCUSUM(10.0, sign=sign),
                rng.standard_normal(100),
                rng.standard_normal(200) + sign,
            )
            for _ in range(30)
        ]
        assert None not in delays
        assert statistics.median(delays) <= 28  # theory: (h + 1.166) / (1 - k) ≈ 22


def test_variance_cusum_finds_a_doubling():
    rng = np.random.default_rng(4)
    delays = [
        _delay(
            VarianceCUSUM(8.0),
            rng.standard_normal(100),
            rng.standard_normal(600) * math.sqrt(2),
        )
        for _ in range(30)
    ]
    assert None not in delays
    assert statistics.median(delays) <= 90  # h / KL(N(0,2) || N(0,1)) ≈ 8 / 0.153 ≈ 52


def test_cusum_run_length_dates_the_change():
    rng = np.random.default_rng(5)
    det = MeanCUSUM(8.0)
    for x in rng.standard_normal(300):
        det.update(x)
    n = 0
    for x in rng.standard_normal(200) + 2.0:
        n += 1
        det.update(x)
        if det.drift_detected:
            break
    assert det.run_length >= n - 3  # the rise began at the change, give or take a dip


def test_ks_distance_matches_the_definition():
    rng = np.random.default_rng(6)
    for ref, win in (
        (rng.standard_normal(100), rng.standard_normal(30) + 0.5),
        (rng.integers(0, 5, 100).astype(float), rng.integers(0, 5, 30).astype(float)),
    ):  # ties
        ref = np.sort(ref)
        points = np.concatenate([ref, win])
        brute = max(abs((ref <= p).mean() - (win <= p).mean()) for p in points)
        assert ks_distance(ref, win) == pytest.approx(brute)


def test_two_window_ks_finds_a_new_mode_that_keeps_the_mean():
    rng = np.random.default_rng(7)
    ref = _filled(rng.standard_normal(512))
    ks = TwoWindowKS(ref, threshold=0.29)
    bimodal = (
        rng.choice([-1.2, 1.2], 300) + rng.standard_normal(300) * 0.3
    )  # mean 0, variance ≈ 1.5
    assert _delay(ks, rng.standard_normal(256), bimodal) is not None


def test_two_window_ks_returns_values_once_they_leave_the_window():
    ks = TwoWindowKS(_filled(np.arange(512.0)), threshold=1.0, window=4, every=2)
    out = [ks.update(float(x)).evicted for x in range(7)]
    assert all(math.isnan(v) for v in out[:4]) and out[4:] == [0.0, 1.0, 2.0]


def test_bernoulli_cusum_learns_the_rate_and_finds_a_rise():
    rng = np.random.default_rng(8)
    delays = []
    for _ in range(30):
        det = BernoulliCUSUM(threshold=10.0, warmup=512)
        delays.append(_delay(det, rng.random(600) < 0.01, rng.random(400) < 0.2))
        assert det.ready
    assert None not in delays
    assert statistics.median(delays) <= 35  # h / E[log-likelihood ratio] ≈ 10 / 0.40 ≈ 25


def test_bernoulli_cusum_keeps_learning_but_not_the_latest_block():
    det = BernoulliCUSUM(threshold=1e9, warmup=64, block=32)
    for _ in range(64):
        det.update(False)
    assert det.n == 64
    for _ in range(64):
        det.update(True)
    assert det.count == 32 and det.n == 96  # one block joined; the newest waits
    det.reset()
    assert not det.ready and det.count == 0


def test_category_change_confirms_new_values_once():
    det = CategoryChange(baseline=20, confirm=3, window=50)
    alarms = []
    for i in range(200):
        value = "fp_a" if i % 2 else "fp_b"  # a rotation known from the warm-up
        if i == 60:
            value = "fp_once"  # one-off: no alert
        if i >= 120:
            value = "fp_new"
        det.update(value)
        if det.drift_detected:
            alarms.append((i, det.value))
    assert alarms == [(122, "fp_new")]
    assert det.first_seen == 121 and "fp_new" in det.known


def test_category_change_with_too_many_warmup_values_is_volatile():
    det = CategoryChange(baseline=30, max_values=8)
    for i in range(100):
        det.update(f"v{i}")
        assert not det.drift_detected
    assert det.volatile and len(det.known) <= 8


def test_content_vector_is_a_cheap_unit_sketch():
    a = content_vector("The logrotate rule keeps seven compressed files of the service log.")
    b = content_vector(
        "A logrotate rule that keeps seven compressed copies of the service's log file."
    )
    c = content_vector("Your refund for order 1234 was issued to the original payment card.")
    assert a.shape == (DIMS,) and a.dtype == np.float64
    assert np.linalg.norm(a) == pytest.approx(1.0)
    assert a @ b > a @ c + 0.3
    assert np.array_equal(content_vector("Hello there"), content_vector("HELLO there"))
    long = "x" * MAX_CHARS
    assert np.array_equal(content_vector(long + "tail that is never read"), content_vector(long))
    assert not content_vector("ab").any()
    assert np.isfinite(content_vector("\ud800 lone surrogate, émoji 🎉 ok")).all()


def test_bernoulli_runs_of_misses_equal_one_by_one_updates():
    rng = np.random.default_rng(10)
    one, batched = (
        BernoulliCUSUM(threshold=1e9, warmup=100),
        BernoulliCUSUM(threshold=1e9, warmup=100),
    )
    for _ in range(60):
        hits = rng.random() < 0.5
        misses = int(rng.integers(0, 70))
        for _ in range(misses):
            one.update(False)
        batched.update_misses(misses)
        one.update(hits)
        batched.update(hits)
        for slot in BernoulliCUSUM.__slots__:
            assert getattr(one, slot) == pytest.approx(getattr(batched, slot)), slot


def test_category_change_learns_a_rotation_quietly_and_confirms_a_takeover_at_once():
    det = CategoryChange(baseline=16)
    for _ in range(16):
        det.update("fp_a")
    for i in range(40):  # a second value alternating with the known one: a rotation
        assert not det.update("fp_b" if i % 2 else "fp_a").drift_detected
    assert "fp_b" in det.known
    assert [det.update("fp_c").drift_detected for _ in range(4)] == [False, False, True, False]
    assert det.score == 0.0 and det.value == "fp_c"
