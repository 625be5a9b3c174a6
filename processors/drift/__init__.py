"""Drift signals: the system changed under you, said at a controlled false-alarm rate.

Per stream (provider + requested model + route) and per feature of every LLM call:

* rates of failure signs (format invalid, preamble, code fence, refusal, truncation, error,
  retry) -- ``BernoulliCUSUM``;
* numeric features (output chars and tokens, the content sketch's dissimilarity to the
  route's usual outputs; and, as *performance*, latency, time to first chunk, tokens per
  second) -- the detectors of ``monitors.NUMERIC_DETECTORS`` (``MeanCUSUM`` up and down,
  ``VarianceCUSUM``, ``TwoWindowKS``) on ranks within a reference sample, so no
  distribution is assumed (ties are ranked at random, so discrete values rank alike);
* the response model and system fingerprint -- ``CategoryChange``: a new value on 3
  calls in a row is a *provider* change, at any point of the stream's life.

Detection starts after ``design.MIN_BASELINE`` calls; the baseline keeps growing to
``design.FULL_BASELINE`` and the thresholds follow its size (``calibration``). Content and
performance each hold one false alarm per ``arl`` calls (default 10,000) on an unchanged
stream, all their features together. After an alarm the feature re-learns its baseline,
so a lasting change raises one alarm. Alarms within ``design.GROUP_CALLS`` calls of each
other form one alert (``frictionlens.drift.alert`` on the event that opened it,
``frictionlens.drift.features`` listing the rest); each names a suspected cause
(``provider_change``, ``prompt_change``, ``traffic_or_unknown``, see ``stage``).
``DriftStage.state_dict()`` saves the baselines (``processors.persistence``).

Adding a numeric detector:

1. Write it in ``detectors.py`` on ``DriftDetector``: ``update(x)`` returns self and sets
   ``statistic``, ``run_length`` and ``drift_detected``; give it a ``name`` (the value of
   ``frictionlens.drift.statistic``). Write ``update`` without branches on the value (as
   the CUSUMs do) so that it also runs on arrays of simulated streams, and add a doctest.
2. Add a row to ``monitors.NUMERIC_DETECTORS``: its fit's name, how to build it, and
   whether it reads raw values or rank scores. Every numeric feature now runs it, and the
   stream's budget counts it as one more statistic.
3. Calibrate it: add its fit name and factory to ``calibration.main()`` (it simulates the
   class itself with ``simulate_scores``), run ``python bench/drift.py --calibrate``, and
   paste the printed fits into ``calibration.FITS``. Design constants go in ``design``.
4. Check: ``tests/test_drift_quality.py`` (whole-stream false alarms from the first call,
   continuous and tied) and ``python bench/drift.py --early`` (delays, false alarms).
"""

from frictionlens.processors.drift.stage import FEATURES, DriftStage

__all__ = ["DriftStage", "FEATURES"]
