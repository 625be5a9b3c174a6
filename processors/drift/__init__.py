"""Drift signals: the system changed under you, said at a controlled false-alarm rate.

Per stream (provider + requested model + route) and per feature of every LLM call:

* rates of failure signs (format invalid, preamble, code fence, refusal, truncation, error,
  retry) -- ``BernoulliCUSUM``;
* numeric features (output chars and tokens, latency, time to first chunk, tokens per
  second, and the content sketch's dissimilarity to the route's usual outputs) --
  ``MeanVarianceCUSUM`` (mean both ways, variance up) and ``TwoWindowKS``, on ranks within
  a reference sample, so no distribution is assumed;
* the response model and system fingerprint -- ``CategoryChange``.

``calibration`` sets every threshold so that a stream, all features together, raises one
false alarm per ``arl`` calls (default 10,000) when nothing changes. Each feature learns
its baseline from its first 512 calls, and again after each alarm, so a lasting change
raises one alarm. Each alarm names a suspected cause: ``provider_change``,
``prompt_change`` or ``traffic_or_unknown`` (see ``stage``). ``DriftStage.state_dict()``
saves the baselines (``processors.persistence``).
"""

from frictionlens.processors.drift.stage import FEATURES, DriftStage

__all__ = ["DriftStage", "FEATURES"]
