"""A new numeric detector through the public tables only: the recipe of processors/drift."""

from __future__ import annotations

import random

import numpy as np

from frictionlens import semconv
from frictionlens.processors.drift import DriftStage, calibration, design, monitors
from frictionlens.processors.drift.detectors import DriftDetector


class SignCUSUM(DriftDetector):
    """Toy: a CUSUM of values above the baseline's median (+0.25 each) and below (-0.75)."""

    __slots__ = ()
    name = "cusum_sign"

    def update(self, z):
        s = self.statistic + (z > 0.0) - 0.75
        rising = s > 0.0
        self.statistic = s * rising
        self.run_length = (self.run_length + 1) * rising
        self.drift_detected = s > self.threshold
        return self


def test_a_toy_detector_added_to_the_tables_is_calibrated_budgeted_and_run(monkeypatch):
    levels = np.arange(4.0, 30.0, 2.0)
    alarms, calls = calibration.simulate_scores(
        SignCUSUM, levels, design.FULL_BASELINE, chains=2_000, steps=1_000
    )
    fit = calibration.fit(levels, alarms, calls)
    assert fit.slope > 0  # rarer alarms for higher thresholds: the class ran on arrays
    monkeypatch.setitem(calibration.FITS, "sign", (fit,) * len(design.REFERENCE_SIZES))
    rows = (
        *monitors.NUMERIC_DETECTORS,
        monitors.NumericDetector("sign", lambda ref, h: SignCUSUM(h)),
    )
    monkeypatch.setattr(monitors, "NUMERIC_DETECTORS", rows)

    stage = DriftStage(seed=0, features=("output_chars",))
    assert stage.thresholds[semconv.DRIFT_KIND_CONTENT].statistics == 5  # one more statistic
    stream = stage._stream("openai/m/toy", 0)
    (monitor,) = [m for m in stream.numeric if m is not None]
    assert "cusum_sign" in {d.name for d in monitor.detectors}
    rng, nrng = random.Random(0), np.random.default_rng(0)
    for x in nrng.standard_normal(600):  # no change: nothing
        assert stream.observe((None,) * 7, (x,), None, None, None, None, rng) == []
    toy = next(d for d in monitor.detectors if isinstance(d, SignCUSUM))
    shifted = nrng.standard_normal(200) + 1.5  # most values now above the median
    for x in shifted[:4]:
        assert stream.observe((None,) * 7, (x,), None, None, None, None, rng) == []
    assert toy.statistic > 0 and toy.run_length >= 3  # it reads the same scores as the others
    found = []
    for x in shifted[4:]:
        found += stream.observe((None,) * 7, (x,), None, None, None, None, rng)
        if found:
            break
    assert found and found[0].feature == "output_chars"
