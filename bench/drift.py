"""Drift detection: quality against an oracle and river's detectors, and the stage's cost.

Quality, on synthetic streams with a known change point (seeded): for each scenario and
detector, the detection delay (calls after the change until the alarm; median and 90th
percentile over trials, "miss" if not within the horizon) and the false alarms per 10,000
stationary calls of the scenario's pre-change distribution. Side by side:

* ours -- the detectors as the drift stage ships them: thresholds for a stream with all 13
  features (31 statistics) sharing one false alarm per 10,000 calls, so each statistic is
  held to one per 310,000; and the same monitor when it is the stream's only feature
  (``DriftStage(features=(...,))``), i.e. at the false-alarm rate the others get;
* oracle -- a CUSUM on the exact log-likelihood ratio of the pre- and post-change
  distributions (the optimum for that change) at one false alarm per 10,000 calls, and the
  same at our per-statistic budget (one per 310,000), to separate the price of watching
  31 statistics under one alarm budget from the price of not knowing the change;
  for the content scenario it watches the dissimilarity to the true pre-change centroid
  with the histogram log-likelihood ratio of that scalar;
* river's ADWIN, PageHinkley and KSWIN tuned to at most one false alarm per 10,000 calls:
  ADWIN's delta and PageHinkley's threshold are the most sensitive values of a grid with
  at most that many alarms on stationary data (PageHinkley's delta: half the design shift,
  as our CUSUMs); KSWIN's alpha = 1e-4, since it tests every call at level alpha;
* a fixed-window KS test of the last 100 calls against the warm-up, every 100 calls, at
  level 0.01 (one false alarm per 10,000 calls).

Also: the family-wise false-alarm rate of a whole stream (every feature at once), the
stage's cost per span against the SDK's own span in the same run, the content vector's
cost, and memory per stream.

    python bench/drift.py              # the full table, ~13 minutes on 2 cores
    python bench/drift.py --quick      # fewer trials, a smoke test (~5 minutes)
    python bench/drift.py --calibrate  # re-run the threshold calibration (~12 minutes)
    python bench/drift.py --early      # self-starting: delays by baseline, false alerts (~10 min)
    python bench/drift.py --cost       # the stage's cost per span only
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from frictionlens import semconv  # noqa: E402
from frictionlens.features import text as textfeat  # noqa: E402
from frictionlens.features.vectors import content_vector  # noqa: E402
from frictionlens.processors.drift import calibration, design  # noqa: E402
from frictionlens.processors.drift.calibration import thresholds  # noqa: E402
from frictionlens.processors.drift.design import FULL_BASELINE as WARMUP  # noqa: E402
from frictionlens.processors.drift.detectors import ks_distance  # noqa: E402
from frictionlens.processors.drift.monitors import (  # noqa: E402
    NUMERIC_DETECTORS,
    ContentMonitor,
    NumericMonitor,
    RateMonitor,
)
from frictionlens.processors.drift.stage import (
    KIND_OF,
    NUMERIC_FEATURES,
    RATE_FEATURES,
    DriftStage,
    StreamState,
)  # noqa: E402

ARL = 10_000.0
PRE = 1_000  # calls before the change: warm-up (512, 576 for content) plus settling
STAGE = DriftStage()
SHIPPED = STAGE.thresholds[semconv.DRIFT_KIND_CONTENT]
ORACLE_SHARE = "oracle CUSUM, our per-statistic budget"
OURS_ALONE = "ours, this feature alone (1 per 10k)"


# -- scenarios -----------------------------------------------------------------------------
TOPICS = {
    "ops": "log rotate disk service daemon journal cron restart systemd config file size compress "
    "daily archive permission mount volume backup kernel process memory swap".split(),
    "code": "function variable return class import module error exception test loop array string "
    "parse value type compile build library method argument object".split(),
    "billing": "invoice payment refund customer order shipping account billing card charge price "
    "discount receipt subscription plan tax amount balance credit".split(),
}
COMMON = "the a to of and in is it you that for on with this be can your will as if or".split()


def _texts(rng: np.random.Generator, topics: list[str], weights: list[float], n: int) -> list[str]:
    out = []
    for t in rng.choice(len(topics), n, p=weights):
        words = TOPICS[topics[t]]
        k = int(rng.integers(30, 80))
        mix = np.where(
            rng.random(k) < 0.55, rng.choice(len(COMMON), k), -1 - rng.choice(len(words), k)
        )
        out.append(" ".join(COMMON[i] if i >= 0 else words[-1 - i] for i in mix))
    return out


@dataclass
class Scenario:
    name: str
    kind: str  # rate | numeric | content
    pre: Callable[[np.random.Generator, int], np.ndarray]
    post: Callable[[np.random.Generator, int], np.ndarray]
    oracle_llr: Callable[[np.ndarray], np.ndarray]
    horizon: int
    """calls after the change a detector gets before it counts as a miss"""
    ph_delta: float
    """PageHinkley's allowance: half the design shift, like our CUSUMs' reference value"""


def _bern(p: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: (rng.random(n) < p).astype(float)


def _bern_llr(p0: float, p1: float) -> Callable[[np.ndarray], np.ndarray]:
    hit = math.inf if p0 == 0 else math.log(p1 / p0)
    miss = math.log((1 - p1) / (1 - p0))
    return lambda x: np.where(x > 0.5, hit, miss)


class ContentPools:
    """Content vectors drawn from pools of synthetic outputs (topics mix), built once."""

    def __init__(self, seed: int = 7, size: int = 6_000) -> None:
        rng = np.random.default_rng(seed)
        self.pre = np.array(
            [content_vector(t) for t in _texts(rng, ["ops", "code"], [0.5, 0.5], size)]
        )
        self.post = np.array(
            [
                content_vector(t)
                for t in _texts(rng, ["ops", "code", "billing"], [0.25, 0.25, 0.5], size)
            ]
        )
        self.centroid = self.pre.mean(axis=0)
        # the scalar the other detectors watch: dissimilarity to the true pre-change centroid
        d0, d1 = -self.pre @ self.centroid, -self.post @ self.centroid
        self.edges = np.quantile(np.concatenate([d0, d1]), np.linspace(0, 1, 41)[1:-1])
        f0 = np.bincount(np.searchsorted(self.edges, d0), minlength=40) + 1.0
        f1 = np.bincount(np.searchsorted(self.edges, d1), minlength=40) + 1.0
        self.llr_table = np.log(f1 / f1.sum()) - np.log(f0 / f0.sum())

    def draw(self, rng: np.random.Generator, n: int, post: bool) -> np.ndarray:
        pool = self.post if post else self.pre
        return pool[rng.integers(0, len(pool), n)]

    def scalar(self, vectors: np.ndarray) -> np.ndarray:
        return -vectors @ self.centroid

    def llr(self, d: np.ndarray) -> np.ndarray:
        return self.llr_table[np.searchsorted(self.edges, d)]


_POOLS: ContentPools | None = None


def pools() -> ContentPools:
    global _POOLS
    if _POOLS is None:
        _POOLS = ContentPools()
    return _POOLS


def scenarios() -> list[Scenario]:
    sd2 = math.sqrt(2.0)
    return [
        Scenario(
            "JSON validity 99% -> 80%",
            "rate",
            _bern(0.01),
            _bern(0.20),
            _bern_llr(0.01, 0.20),
            1_000,
            0.05,
        ),
        Scenario(
            "mean length +1 sd",
            "numeric",
            lambda r, n: r.standard_normal(n),
            lambda r, n: r.standard_normal(n) + 1.0,
            lambda x: x - 0.5,
            1_000,
            0.5,
        ),
        Scenario(
            "length variance x2",
            "numeric",
            lambda r, n: r.standard_normal(n),
            lambda r, n: r.standard_normal(n) * sd2,
            lambda x: x * x / 4 - math.log(2) / 2,
            2_000,
            0.5,
        ),
        Scenario(
            "preamble rate 0% -> 30%",
            "rate",
            _bern(0.0),
            _bern(0.30),
            _bern_llr(0.0, 0.30),
            1_000,
            0.05,
        ),
        Scenario(
            "topic shift (half the outputs on a new topic)",
            "content",
            lambda r, n: pools().draw(r, n, False),
            lambda r, n: pools().draw(r, n, True),
            lambda d: pools().llr(d),
            1_000,
            0.5 * float(np.std(pools().scalar(pools().pre))),
        ),
    ]


# -- detectors -----------------------------------------------------------------------------
class Ours:
    """A shipped monitor, optionally with all but one of its detectors switched off."""

    def __init__(self, kind: str, only: str | None, seed: int, alone: bool = False) -> None:
        self.rng = random.Random(seed)
        th = thresholds(ARL, statistics=1 if kind == "rate" else 4) if alone else SHIPPED
        if kind == "rate":
            self.monitor: Any = RateMonitor("x", th)
        elif kind == "numeric":
            self.monitor = NumericMonitor("x", th)
        else:
            self.monitor = ContentMonitor("x", th)
        numeric = self.monitor if kind == "numeric" else getattr(self.monitor, "numeric", None)
        if only is not None and numeric is not None:  # switch the other detectors off
            fits = [row.fit for row in NUMERIC_DETECTORS]
            numeric._schedules = tuple(
                s if fit == only else (math.inf,) * len(s)
                for fit, s in zip(fits, numeric._schedules)
            )
            for det, s in zip(numeric.detectors, numeric._schedules):
                det.threshold = s[0]
        self.kind = kind

    def update(self, x: Any) -> bool:
        mon = self.monitor
        if self.kind == "rate":
            mon.update(bool(x > 0.5))
            if mon.drift_detected:
                mon.alarm()
                return True
            return False
        return mon.update(x, self.rng) is not None


class OracleCUSUM:
    def __init__(self, llr: Callable[[np.ndarray], np.ndarray], threshold: float) -> None:
        self.llr, self.threshold, self.s = llr, threshold, 0.0

    def update(self, x: Any) -> bool:
        self.s = max(0.0, self.s + float(self.llr(np.asarray([x]))[0]))
        if self.s > self.threshold:
            self.s = 0.0
            return True
        return False


class River:
    def __init__(self, make: Callable[[], Any]) -> None:
        self.det = make()

    def update(self, x: Any) -> bool:
        self.det.update(float(x))
        return bool(self.det.drift_detected)


class FixedKS:
    """Last 100 values against the first 512, every 100 calls, at level 0.01."""

    def __init__(self) -> None:
        self.reference: list[float] = []
        self.window: list[float] = []
        self.threshold = calibration.ks_threshold(ARL, reference=WARMUP, window=100, every=100)

    def update(self, x: Any) -> bool:
        if len(self.reference) < WARMUP:
            self.reference.append(float(x))
            if len(self.reference) == WARMUP:
                self.reference.sort()
            return False
        self.window.append(float(x))
        if len(self.window) < 100:
            return False
        fired = ks_distance(np.asarray(self.reference), np.asarray(self.window)) > self.threshold
        self.window = []
        return bool(fired)


def oracle_threshold(sc: Scenario, arl: float, seed: int = 11) -> float:
    """Threshold of the oracle CUSUM for one false alarm per ``arl`` calls: vectorised
    simulation on a grid, log-linear interpolation of the alarm rate between grid points."""
    rng = np.random.default_rng(seed)
    levels = np.arange(1.0, 16.01, 0.5)[:, None]
    chains, steps = 2_000, 20_000
    s = np.zeros((len(levels), chains))
    alarms = np.zeros(len(levels))
    for _ in range(steps):
        s = np.maximum(0.0, s + sc.oracle_llr(_scalar(sc, sc.pre(rng, chains))))
        fired = s > levels
        alarms += fired.sum(1)
        s[fired] = 0.0
    target = math.log(chains * steps / arl)
    counts = np.log(np.maximum(alarms, 0.5))
    for i in range(1, len(levels)):
        if counts[i] <= target:
            if counts[i - 1] <= target:
                return float(levels[i - 1, 0])
            frac = (counts[i - 1] - target) / (counts[i - 1] - counts[i])
            return float(levels[i - 1, 0] + frac * (levels[i, 0] - levels[i - 1, 0]))
    return float(levels[-1, 0])


def _scalar(sc: Scenario, x: np.ndarray) -> np.ndarray:
    return pools().scalar(x) if sc.kind == "content" else x


RIVER_GRIDS: dict[str, tuple[str, list[float]]] = {  # most sensitive first
    "ADWIN": ("delta", [0.5, 0.2, 0.1, 0.05, 0.02, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5, 1e-6, 1e-8]),
    "PageHinkley": (
        "threshold",
        [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 70, 100, 150, 200, 300, 500],
    ),
}


def river_factory(name: str, param: float, sc: Scenario) -> Callable[[], Any]:
    from river import drift

    if name == "ADWIN":
        return lambda: drift.ADWIN(delta=param)
    if name == "PageHinkley":
        mode = "up" if sc.kind == "rate" else "both"
        return lambda: drift.PageHinkley(threshold=param, delta=sc.ph_delta, mode=mode)
    return lambda: drift.KSWIN(alpha=param, seed=1)


# -- runs ----------------------------------------------------------------------------------
def _stationary_alarms(
    make: Callable[[int], Any], sc: Scenario, streams: int, calls: int, seed: int
) -> int:
    """Alarms in `calls` counted calls per stream, after PRE calls of burn-in."""
    alarms = 0
    for s in range(streams):
        rng = np.random.default_rng(seed * 1000 + s)
        det = make(s)
        data = sc.pre(rng, PRE + calls)
        xs = _scalar(sc, data) if not isinstance(det, Ours) else data
        for i, x in enumerate(xs):
            if det.update(x) and i >= PRE:
                alarms += 1
    return alarms


def tune_river(name: str, sc: Scenario, calls: int) -> tuple[float, int]:
    """The most sensitive grid value with at most one false alarm per ARL calls."""
    key, grid = RIVER_GRIDS[name]
    for value in grid:
        alarms = _stationary_alarms(
            lambda s: River(river_factory(name, value, sc)), sc, 4, calls // 4, seed=99
        )
        if alarms <= calls / ARL:
            return value, alarms
    return grid[-1], alarms


def delays(make: Callable[[int], Any], sc: Scenario, trials: int, pre: int = PRE) -> list[float]:
    out = []
    for t in range(trials):
        rng = np.random.default_rng(10_000 + t)
        data = np.concatenate([sc.pre(rng, pre), sc.post(rng, sc.horizon)])
        det = make(t)
        xs = data if isinstance(det, Ours) else _scalar(sc, data)
        found = math.inf
        for i, x in enumerate(xs):
            if det.update(x) and i >= pre:
                found = i - pre + 1
                break
        out.append(found)
    return out


@dataclass
class Row:
    scenario: str
    detector: str
    delays: list[float]
    fa: int
    fa_calls: int
    note: str = ""


def job(args: tuple[int, str, int, int]) -> Row:
    index, detector, trials, fa_calls = args
    sc = scenarios()[index]
    note = ""
    if detector.startswith("ours"):
        only = {
            "ours: mean CUSUM": "mean",
            "ours: variance CUSUM": "variance",
            "ours: TwoWindowKS": "ks",
        }.get(detector)
        alone = detector == OURS_ALONE
        make: Callable[[int], Any] = lambda s: Ours(sc.kind, only, s, alone)
    elif detector.startswith("oracle"):
        h = oracle_threshold(sc, ARL * (SHIPPED.statistics if detector == ORACLE_SHARE else 1))
        note = f"h={h:.2f}"
        make = lambda s: OracleCUSUM(sc.oracle_llr, h)
    elif detector == "fixed KS / 100 calls":
        make = lambda s: FixedKS()
    elif detector == "KSWIN":
        alpha = 1.0 / ARL
        note = f"alpha={alpha:g}"
        make = lambda s: River(river_factory("KSWIN", alpha, sc))
        # it forgets all but its last 100 values: a short lead-in is the same test, 10x cheaper
        d = delays(make, sc, trials, pre=200)
        fa = _stationary_alarms(make, sc, 2, fa_calls // 10, seed=5)
        return Row(sc.name, detector, d, fa, 2 * (fa_calls // 10), note)
    else:
        value, _ = tune_river(detector, sc, fa_calls)
        note = f"{RIVER_GRIDS[detector][0]}={value:g}" + (
            f", delta={sc.ph_delta:.3g}" if detector == "PageHinkley" else ""
        )
        make = lambda s: River(river_factory(detector, value, sc))
    d = delays(make, sc, trials)
    streams = 4
    fa = _stationary_alarms(make, sc, streams, fa_calls // streams, seed=5)
    return Row(sc.name, detector, d, fa, streams * (fa_calls // streams), note)


def detectors_for(sc: Scenario) -> list[str]:
    ours = (
        ["ours: BernoulliCUSUM"]
        if sc.kind == "rate"
        else (
            [
                "ours: NumericMonitor (all)",
                "ours: mean CUSUM",
                "ours: variance CUSUM",
                "ours: TwoWindowKS",
            ]
            if sc.kind == "numeric"
            else ["ours: ContentMonitor"]
        )
    )
    return ours + [
        OURS_ALONE,
        "oracle CUSUM",
        ORACLE_SHARE,
        "ADWIN",
        "PageHinkley",
        "KSWIN",
        "fixed KS / 100 calls",
    ]


def family_wise(streams: int, calls: int, seed: int = 3) -> tuple[dict[str, int], int]:
    """Alarms per kind (content, performance) of whole streams (all 15 features,
    independent stationary data); each kind has its own budget."""
    probs = np.array([0.01, 0.02, 0.05, 0.1, 0.3, 0.01, 0.03])
    alarms = {"content": 0, "performance": 0}
    counted = 0
    for s in range(streams):
        rng = random.Random(seed * 100 + s)
        nrng = np.random.default_rng(seed * 100 + s)
        stream = StreamState(STAGE.thresholds, RATE_FEATURES, NUMERIC_FEATURES)
        n = PRE + calls
        rates = (nrng.random((n, 7)) < probs).tolist()
        nums = nrng.standard_normal((n, 5)).tolist()
        vectors = pools().draw(nrng, n, False)
        for i in range(n):
            out = stream.observe(rates[i], nums[i], vectors[i], "m", "fp", None, rng)
            if i >= PRE:
                counted += 1
                for alarm in out:
                    alarms[KIND_OF[alarm.feature]] += 1
    return alarms, counted


def _fmt_delay(values: list[float], q: float) -> str:
    """Nearest-rank percentile; a miss (inf) ranks last."""
    v = sorted(values)[max(0, math.ceil(q / 100 * len(values)) - 1)]
    return "miss" if math.isinf(v) else f"{v:.0f}"


def quality(trials: int, fa_calls: int, workers: int) -> list[Row]:
    jobs = [(i, d, trials, fa_calls) for i, sc in enumerate(scenarios()) for d in detectors_for(sc)]
    jobs.sort(key=lambda j: j[1] != "KSWIN")  # the slow ones first
    with mp.get_context("fork").Pool(workers) as pool:
        rows = pool.map(job, jobs, chunksize=1)
    names = [sc.name for sc in scenarios()]
    rows.sort(
        key=lambda r: (
            names.index(r.scenario),
            detectors_for(scenarios()[names.index(r.scenario)]).index(r.detector),
        )
    )
    return rows


def print_quality(rows: list[Row]) -> None:
    print(
        "\n## Detection delay (calls after the change) and false alarms per 10,000 stationary calls\n"
    )
    print(
        "| scenario | detector | median delay | p90 delay | detected | FA / 10k (alarms/calls) "
        "| / oracle | / oracle at our budget | setting |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    oracle = {
        (r.scenario, r.detector): statistics.median(r.delays)
        for r in rows
        if r.detector.startswith("oracle")
    }
    for r in rows:
        med = statistics.median(r.delays)
        ratios = []
        for ref in ("oracle CUSUM", ORACLE_SHARE):
            base = oracle.get((r.scenario, ref), math.inf)
            ratios.append("—" if math.isinf(med) or math.isinf(base) else f"{med / base:.2f}")
        hit = sum(not math.isinf(d) for d in r.delays) / len(r.delays)
        name = f"**{r.detector}**" if r.detector.startswith("ours") else r.detector
        print(
            f"| {r.scenario} | {name} | {_fmt_delay(r.delays, 50)} | {_fmt_delay(r.delays, 90)} | {hit:.0%} | "
            f"{r.fa / r.fa_calls * 1e4:.2f} ({r.fa}/{r.fa_calls:,}) | {ratios[0]} | {ratios[1]} | {r.note} |"
        )


# -- cost ------------------------------------------------------------------------------------
def stage_cost(calls: int = 3_000) -> tuple[float, float, float]:
    """Median µs of DriftStage.process per LLM span (all features, warmed up), of creating and
    ending the span itself with the SDK (no processor), and their ratio; same run."""
    from opentelemetry.sdk.trace import TracerProvider

    from frictionlens.features.record import CallFeatures
    from frictionlens.processors.pipeline import SpanRecord

    class Keep:
        def __init__(self) -> None:
            self.spans: list[Any] = []

        def on_start(self, *a: Any, **k: Any) -> None: ...
        def _on_ending(self, span: Any) -> None: ...
        def on_end(self, span: Any) -> None:
            self.spans.append(span)

        def shutdown(self) -> None: ...
        def force_flush(self, timeout_millis: int = 0) -> bool:
            return True

    keep = Keep()
    tp = TracerProvider()
    tp.add_span_processor(keep)
    tracer = tp.get_tracer("bench")
    rng = np.random.default_rng(0)
    vectors = pools().draw(rng, 1, False)
    records = []
    warm = WARMUP + 4_096
    for i in range(warm + calls):
        chars = int(np.exp(rng.normal(6, 0.4)))
        attrs = {
            semconv.GEN_AI_OPERATION_NAME: "chat",
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
            semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: "fp_1",
            semconv.GEN_AI_RESPONSE_ID: f"chatcmpl-{i}",
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 96,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: chars // 4,
            semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.2 + rng.random() / 10,
            semconv.OUTPUT_CHARS: chars,
            semconv.OUTPUT_FORMAT_EXPECTED: "json",
            semconv.OUTPUT_FORMAT_VALID: bool(rng.random() > 0.01),
            semconv.OUTPUT_PREAMBLE: False,
            semconv.OUTPUT_CODE_FENCE: False,
            semconv.OUTPUT_REFUSAL: False,
            semconv.OUTPUT_TRUNCATED: False,
            semconv.RETRY_COUNT: 0,
            semconv.ROUTE: "support",
        }
        start = 1_700_000_000_000_000_000 + i * 10**9
        span = tracer.start_span("chat gpt-4o-mini", attributes=attrs, start_time=start)
        span.end(end_time=start + int(float(np.exp(rng.normal(0, 0.3))) * 1e9))
        records.append(
            (
                keep.spans[-1],
                CallFeatures(
                    system_digest=1,
                    output_vector=vectors[0] + 0.01 * rng.standard_normal(len(vectors[0])),
                ),
            )
        )
    stage = DriftStage(seed=0)
    emit = lambda span: None  # noqa: E731
    for span, feats in records[:warm]:  # past the reservoirs' early, busier phase
        stage.process(SpanRecord(span, feats), emit)
    times, sdk = [], []
    tp_bare = TracerProvider()
    bare = tp_bare.get_tracer("bench")
    for span, feats in records[warm:]:
        record = SpanRecord(span, feats)
        t = time.perf_counter_ns()
        stage.process(record, emit)
        times.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        bare.start_span("chat", attributes=span.attributes).end()
        sdk.append(time.perf_counter_ns() - t)
    ours, base = _common.median(times) / 1e3, _common.median(sdk) / 1e3
    return ours, base, ours / base


def vector_cost(n: int = 3_000) -> tuple[float, float]:
    """Median µs of content_vector and of the salted digest the instrumentation already takes,
    on the same 4 KB output."""
    text = (_texts(np.random.default_rng(1), ["ops"], [1.0], 1)[0] + " ") * 20
    text = text[:4096]
    salt = b"bench-salt"
    a, b = [], []
    for _ in range(n):
        t = time.perf_counter_ns()
        content_vector(text)
        a.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        textfeat.digest(text, salt)
        b.append(time.perf_counter_ns() - t)
    return _common.median(a) / 1e3, _common.median(b) / 1e3


def bytes_per_stream(streams: int = 40) -> float:
    """Heap bytes per warmed-up stream (every feature), by tracemalloc."""
    rng = np.random.default_rng(2)
    prng = random.Random(2)
    vectors = pools().draw(rng, 800, False)
    data = [
        ((rng.random(7) < 0.05).tolist(), rng.standard_normal(5).tolist(), vectors[i])
        for i in range(800)
    ]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = []
    for _ in range(streams):
        st = StreamState(STAGE.thresholds, RATE_FEATURES, NUMERIC_FEATURES)
        for rates, nums, vec in data:
            st.observe(rates, nums, vec, "m", "fp", "1", prng)
        kept.append(st)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / streams


# -- self-starting: short baselines, whole streams ---------------------------------------------
BASELINES = (50, 100, 250, 1_000)


def early_delays(trials: int) -> list[tuple[str, int, list[float]]]:
    """Delay of a whole stream's first alarm on the changed feature, by baseline length."""
    cases: list[tuple[str, int, Callable[[np.random.Generator, bool], tuple[list, list]]]] = [
        ("mean length +1 sd", 0, lambda r, c: ([False] * 7, [r.normal(1.0 if c else 0.0)])),
        (
            "length variance x2",
            0,
            lambda r, c: ([False] * 7, [r.normal() * (math.sqrt(2) if c else 1.0)]),
        ),
        (
            "JSON validity 99% -> 80%",
            -1,
            lambda r, c: ([bool(r.random() < (0.2 if c else 0.01))] + [False] * 6, [r.normal()]),
        ),
        (
            "preamble 0% -> 30%",
            -2,
            lambda r, c: ([False, bool(c and r.random() < 0.3)] + [False] * 5, [r.normal()]),
        ),
    ]
    out = []
    for name, _, draw in cases:
        for pre in BASELINES:
            found = []
            for t in range(trials):
                r, rng = np.random.default_rng(t), random.Random(t)
                stream = StreamState(STAGE.thresholds, RATE_FEATURES, NUMERIC_FEATURES)
                delay = math.inf
                for i in range(pre + 300):
                    changed = i >= pre
                    rates, nums = draw(r, changed)
                    alarms = stream.observe(rates, nums, None, "m", "fp", None, rng)
                    if changed and any(KIND_OF[a.feature] == "content" for a in alarms):
                        delay = i - pre + 1
                        break
                found.append(delay)
            out.append((name, pre, found))
    return out


def control_streams(
    kind: str, streams: int, calls: int, seed: int = 5
) -> tuple[dict[str, int], int]:
    """Alerts per kind on unchanged streams from their first call, all 15 features on
    (alarms within ``GROUP_CALLS`` of each other are one alert, as the stage reports them).

    ``continuous``: iid lognormal lengths and timings; ``tied``: short JSON answers (lengths
    from 6 values, tokens from 3); ``host load``: timings that slow down 2-5x in bursts of
    1-20 calls (5 % of calls), and fingerprints rotating among 3 values; ``bursty``: calls
    come in bursts of 1-8 alike answers (the same length, repeated).
    """
    alarms = {"content": 0, "performance": 0, "provider": 0}
    for s in range(streams):
        r, rng = np.random.default_rng(seed * 1000 + s), random.Random(s)
        stream = StreamState(STAGE.thresholds, RATE_FEATURES, NUMERIC_FEATURES)
        vectors = pools().draw(r, calls, False)
        probs = np.array([0.01, 0.02, 0.05, 0.01, 0.01, 0.005, 0.03])
        slow, repeat, last = 0, 0, None
        for i in range(calls):
            chars = float(np.exp(r.normal(6, 0.4)))
            tokens = chars // 4
            if kind == "tied":
                chars = float(r.choice([42, 43, 44, 45, 47, 51]))
                tokens = float(r.choice([11, 12, 13]))
            ttfc = float(np.exp(r.normal(-1.5, 0.2)))
            latency = ttfc + tokens / 60 * float(np.exp(r.normal(0, 0.1)))
            if kind == "host load":
                if slow == 0 and r.random() < 0.05 / 10:
                    slow = int(r.integers(1, 21))
                if slow:
                    slow -= 1
                    factor = float(r.uniform(2, 5))
                    latency, ttfc = latency * factor, ttfc * factor
            nums = [chars, tokens, latency, ttfc, tokens / max(latency - ttfc, 1e-3)]
            if kind == "bursty":
                if repeat and last is not None:
                    repeat -= 1
                    nums = last
                else:
                    repeat = int(r.integers(0, 8))
                    last = nums
            fingerprint = f"fp_{i % 3}" if kind == "host load" else "fp"
            out = stream.observe(
                (r.random(7) < probs).tolist(), nums, vectors[i], "m", fingerprint, None, rng
            )
            for _alarm, group_kind, opens, _features in stream.group(out):
                alarms[group_kind] += opens
    return alarms, streams * calls


def early_others(args: tuple[int, str, int]) -> tuple[str, str, list[str]]:
    """Delays of the oracle CUSUM (1 per 10k), ADWIN and KSWIN by baseline length, on the
    same scenarios (river's detectors tuned as in the main table, from their first call)."""
    index, detector, trials = args
    sc = scenarios()[index]
    if detector == "oracle CUSUM":
        h = oracle_threshold(sc, ARL)
        make: Callable[[int], Any] = lambda s: OracleCUSUM(sc.oracle_llr, h)
    elif detector == "KSWIN":
        make = lambda s: River(river_factory("KSWIN", 1.0 / ARL, sc))
    else:
        value, _ = tune_river(detector, sc, 40_000)
        make = lambda s: River(river_factory(detector, value, sc))
    cells = []
    for pre in BASELINES:
        found = delays(make, sc, trials, pre=pre)
        hit = sum(not math.isinf(d) for d in found) / len(found)
        cells.append(f"{_fmt_delay(found, 50)} / {_fmt_delay(found, 90)} / {hit:.0%}")
    return sc.name, detector, cells


EARLY_SCENARIOS = {  # early_delays' names -> index in scenarios()
    "mean length +1 sd": 1,
    "length variance x2": 2,
    "JSON validity 99% -> 80%": 0,
    "preamble 0% -> 30%": 3,
}


def print_early(trials: int, streams: int, calls: int, workers: int) -> None:
    print("\n## Self-starting: delay (calls after the change) by baseline length\n")
    print(
        "| scenario | detector | "
        + " | ".join(f"baseline {b}: median / p90 / caught" for b in BASELINES)
        + " |"
    )
    print("|---|---|" + "---:|" * len(BASELINES))
    rows: dict[str, list[str]] = {}
    for name, _pre, found in early_delays(trials):
        hit = sum(not math.isinf(d) for d in found) / len(found)
        rows.setdefault(name, []).append(
            f"{_fmt_delay(found, 50)} / {_fmt_delay(found, 90)} / {hit:.0%}"
        )
    jobs = [
        (index, detector, trials)
        for index in EARLY_SCENARIOS.values()
        for detector in ("oracle CUSUM", "ADWIN", "KSWIN")
    ]
    with mp.get_context("fork").Pool(workers) as pool:
        others = pool.map(early_others, jobs, chunksize=1)
    for name, cells in rows.items():
        print(f"| {name} | **frictionlens (whole stream)** | " + " | ".join(cells) + " |")
        for sc_name, detector, other in others:
            if sc_name == scenarios()[EARLY_SCENARIOS[name]].name:
                print(f"| {name} | {detector} | " + " | ".join(other) + " |")
    print(
        "\n## Unchanged streams from their first call: false alerts per 10,000 calls per stream\n"
    )
    print("| stream | content (alerted) | performance (reported) | provider | calls |")
    print("|---|---:|---:|---:|---:|")
    runs = [(kind, streams, calls) for kind in ("continuous", "tied", "host load", "bursty")]
    runs += [(kind, 20 * streams, 600) for kind in ("continuous", "tied", "host load")]
    for kind, count, length in runs:
        alarms, n = control_streams(kind, count, length)
        print(
            f"| {kind}, {count} streams × {length:,} calls | {alarms['content'] / n * 1e4:.2f} "
            f"| {alarms['performance'] / n * 1e4:.2f} | {alarms['provider'] / n * 1e4:.2f} | {n:,} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--early", action="store_true", help="only the self-starting tables")
    ap.add_argument("--cost", action="store_true", help="only the stage's cost per span")
    args = ap.parse_args()
    if args.calibrate:
        calibration.main()
        return
    if args.early:
        print_early(*((30, 10, 10_000) if args.quick else (100, 40, 10_000)), args.workers)
        return
    if args.cost:
        for _ in range(3):
            ours, base, ratio = stage_cost()
            print(f"drift stage {ours:.1f} µs per span; SDK span {base:.1f} µs; ratio {ratio:.2f}")
        return
    trials, fa_calls, fw = (30, 40_000, (4, 10_000)) if args.quick else (100, 200_000, (20, 25_000))
    t0 = time.time()
    print(
        f"# frictionlens drift bench ({'quick' if args.quick else 'full'}; Python {sys.version.split()[0]})"
    )
    print(
        f"shipped content thresholds (ARL {ARL:,.0f} per stream, {SHIPPED.statistics} statistics; "
        f"at baselines of {design.REFERENCE_SIZES} calls): {SHIPPED.schedules}"
    )
    rows = quality(trials, fa_calls, args.workers)
    print_quality(rows)
    alarms, counted = family_wise(*fw)
    print("\n## Whole stream, all 15 features at once (target <= 1 per 10,000 per kind)\n")
    for kind, count in alarms.items():
        print(
            f"{kind}: {count} false alarms in {counted:,} stationary calls = "
            f"{count / counted * 1e4:.2f} per 10,000 calls"
        )
    ours, base, ratio = stage_cost()
    vec, digest = vector_cost()
    mem = bytes_per_stream()
    print("\n## Cost (this machine; same-run references)\n")
    print("| measure | value |\n|---|---:|")
    print(f"| drift stage, median per LLM span (all features) | {ours:.1f} µs |")
    print(
        f"| SDK span start+end with the same attributes, no processor (reference) | {base:.1f} µs |"
    )
    print(f"| stage / SDK span | {ratio:.2f}× |")
    print(f"| content_vector, 4 KB output (reads the first 1,024 characters) | {vec:.1f} µs |")
    print(
        f"| salted digest of the same output (reference, already paid per message) | {digest:.1f} µs |"
    )
    print(f"| memory per warmed-up stream | {mem / 1024:.1f} KB |")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
