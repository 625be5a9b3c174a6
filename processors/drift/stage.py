"""The drift stage: per-stream baselines of every LLM call's features, and calibrated alarms.

A *stream* is provider + **requested** model + route: the name the app asked for. When the
provider silently serves another model version or fingerprint under that name, the stream
keeps its baseline, so the change shows up as drift with the cause ``provider_change``
(a stream keyed by the response model would start a fresh baseline and see nothing).
The route is ``frictionlens.route`` when the app gives one, else inferred from the salted
hash of the system prompt; only explicit routes can attribute drift to ``prompt_change``
(an inferred route changes, i.e. becomes a new stream, whenever its prompt does).

When a feature drifts, the call's span gets a ``frictionlens.drift`` event with its kind
(``content``; ``performance`` for timing; ``provider`` for a new model or fingerprint).
Alarms within ``design.GROUP_CALLS`` calls of the previous one share its cause and join its
alert: their events say ``frictionlens.drift.alert = false`` and list the alert's features
so far, and only the event that opened an alert moves the ``frictionlens.drift.alerts``
counter. ``frictionlens.drift.score`` (statistic over threshold, 1.0 = alarm) is observed
per stream and feature at each metric collection, so the hot path pays nothing for it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from frictionlens import semconv
from frictionlens.features.invocation import route_of, stream_name
from frictionlens.features.vectors import DIMS
from frictionlens.health import count_eviction
from frictionlens.processors.drift import design, monitors
from frictionlens.processors.drift.calibration import Thresholds, thresholds
from frictionlens.processors.drift.detectors import CategoryChange
from frictionlens.processors.drift.monitors import (
    Alarm,
    CategoryMonitor,
    ContentMonitor,
    NumericMonitor,
    RateMonitor,
    TimingMonitor,
)
from frictionlens.processors.pipeline import Emit, SpanRecord

_log = logging.getLogger(__name__)

# values of frictionlens.drift.feature
FORMAT_INVALID = "format_invalid"
PREAMBLE = "preamble"
CODE_FENCE = "code_fence"
REFUSAL = "refusal"
TRUNCATED = "truncated"
ERROR = "error"
RETRY = "retry"
OUTPUT_CHARS = "output_chars"
OUTPUT_TOKENS = "output_tokens"
LATENCY = "latency"
TIME_TO_FIRST_CHUNK = "time_to_first_chunk"
TOKENS_PER_SECOND = "tokens_per_second"
CONTENT = "content"
RESPONSE_MODEL = "response_model"
SYSTEM_FINGERPRINT = "system_fingerprint"

RATE_FEATURES = (FORMAT_INVALID, PREAMBLE, CODE_FENCE, REFUSAL, TRUNCATED, ERROR, RETRY)
NUMERIC_FEATURES = (
    OUTPUT_CHARS,
    OUTPUT_TOKENS,
    LATENCY,
    TIME_TO_FIRST_CHUNK,
    TOKENS_PER_SECOND,
    CONTENT,
)
CATEGORY_FEATURES = (RESPONSE_MODEL, SYSTEM_FINGERPRINT)
FEATURES = RATE_FEATURES + NUMERIC_FEATURES + CATEGORY_FEATURES
TIMING_FEATURES = (LATENCY, TIME_TO_FIRST_CHUNK, TOKENS_PER_SECOND)
"""move with the host, the network and the provider's load: their own budget and kind"""
KIND_OF = {
    **{f: semconv.DRIFT_KIND_CONTENT for f in FEATURES},
    **{f: semconv.DRIFT_KIND_PERFORMANCE for f in TIMING_FEATURES},
    **{f: semconv.DRIFT_KIND_PROVIDER for f in CATEGORY_FEATURES},
}
SEVERITY = {
    semconv.DRIFT_KIND_PERFORMANCE: 0,
    semconv.DRIFT_KIND_CONTENT: 1,
    semconv.DRIFT_KIND_PROVIDER: 2,
}
"""an alarm joins an open alert of its own kind or a more severe one; else it raises one"""

STATE_FORMAT = 2
"""2: timing references hold medians of design.TIMING_BLOCK calls; a format-1 state is dropped
(with a warning) and the baselines re-learnt, from 32 calls on"""
_ALL_MISSES = (False,) * len(RATE_FEATURES)
ATTRIBUTION_CALLS = 4 * design.WINDOW
"""a model, fingerprint or prompt change this recent is a suspect for any alarm"""


class StreamState:
    """Everything the stage knows about one stream: a monitor per feature, and recent changes."""

    __slots__ = (
        "calls",
        "last_seen_ns",
        "rates",
        "misses",
        "miss_pattern",
        "numeric",
        "content",
        "model",
        "fingerprint",
        "prompt",
        "provider_changed_at",
        "prompt_changed_at",
        "alert_kind",
        "alert_last",
        "alert_features",
    )

    def __init__(
        self,
        th: Mapping[str, Thresholds],
        rates: Iterable[str],
        numeric: Iterable[str],
    ) -> None:
        """``th``: the thresholds of each kind (``semconv.DRIFT_KIND_*``)."""
        self.calls = 0
        self.last_seen_ns = 0
        on = set(rates) | set(numeric)
        # aligned with RATE_FEATURES / NUMERIC_FEATURES[:-1]; None where a feature is off
        content = th[semconv.DRIFT_KIND_CONTENT]
        self.rates = tuple(RateMonitor(f, content) if f in on else None for f in RATE_FEATURES)
        self.misses = 0
        """calls with no failure sign, not yet handed to the rate detectors (at most a block)"""
        self.miss_pattern: tuple[object, ...] = _ALL_MISSES
        """the rates of those calls: False where the feature was known, None where absent
        (spans without captured content never know the text cues)"""
        self.numeric = tuple(
            (TimingMonitor if f in TIMING_FEATURES else NumericMonitor)(f, th[KIND_OF[f]])
            if f in on
            else None
            for f in NUMERIC_FEATURES[:-1]
        )
        self.content = ContentMonitor(CONTENT, content) if CONTENT in on else None
        self.model = CategoryMonitor(RESPONSE_MODEL)
        self.fingerprint = CategoryMonitor(SYSTEM_FINGERPRINT)
        self.prompt = CategoryMonitor("system_prompt")
        self.provider_changed_at = -1
        self.prompt_changed_at = -1
        self.alert_kind = ""
        """kind of the latest alert ("" before the first)"""
        self.alert_last = -design.GROUP_CALLS - 1
        """call of the latest alarm that raised or joined it"""
        self.alert_features: list[str] = []

    def observe(
        self,
        rates: Sequence[object],
        numeric: Sequence[object],
        vector: Any,
        model: object,
        fingerprint: object,
        prompt: object,
        rng: random.Random,
    ) -> Sequence[Alarm]:
        """Feed one call's features, aligned with RATE_FEATURES and NUMERIC_FEATURES (None =
        absent; ``numeric`` may stop early); returns the alarms raised."""
        self.calls += 1
        alarms: list[Alarm] = []
        if model is not None:
            cat = self.model
            cat.update(model)
            if cat.new:
                self.provider_changed_at = self.calls
            if cat.drift_detected:
                alarms.append(cat.alarm())
        if fingerprint is not None:
            cat = self.fingerprint
            cat.update(fingerprint)
            if cat.new:
                self.provider_changed_at = self.calls
            if cat.drift_detected:
                alarms.append(cat.alarm())
        if prompt is not None:
            self.prompt.update(prompt)
            if self.prompt.new:
                self.prompt_changed_at = self.calls
        if rates == self.miss_pattern:  # the usual call: no failure sign at all
            self.misses += 1
            if self.misses == design.RATE_BLOCK:
                self._flush_misses()
        elif not any(rates):  # no failure sign either, but other features known
            if self.misses:
                self._flush_misses()
            self.miss_pattern = tuple(rates)
            self.misses = 1
        else:
            if self.misses:
                self._flush_misses()
            for rate, x in zip(self.rates, rates):
                if x is not None and rate is not None:
                    rate.update(bool(x))
                    if rate.drift_detected:
                        alarms.append(rate.alarm())
        for num, x in zip(self.numeric, numeric):
            if x is not None and num is not None:
                value = float(x)  # type: ignore[arg-type]
                if value == value:  # NaN would break the reference's order
                    alarm = num.update(value, rng)
                    if alarm is not None:
                        alarms.append(alarm)
        if vector is not None and self.content is not None:
            alarm = self.content.update(vector, rng)
            if alarm is not None:
                alarms.append(alarm)
        return alarms

    def _flush_misses(self) -> None:
        """Hand the rate detectors the misses counted since the last flush."""
        for rate, known in zip(self.rates, self.miss_pattern):
            if rate is not None and known is not None:
                rate.update_misses(self.misses)
        self.misses = 0

    def cause(self, alarm: Alarm) -> str:
        """provider_change if the response model or fingerprint changed within the detection
        window, else prompt_change if the route's system prompt did, else traffic_or_unknown.

        The window reaches back over the calls the evidence built up on (the alarm's run
        length) plus one recent window, and at least ``ATTRIBUTION_CALLS``: a CUSUM that
        dipped back to zero during a slow build-up under-dates the change."""
        if alarm.statistic == CategoryChange.name:
            return semconv.DRIFT_CAUSE_PROVIDER_CHANGE
        # a young stream's window reaches before its first call: never changed is -1 there
        start = max(0, self.calls - max(alarm.run_length + design.WINDOW, ATTRIBUTION_CALLS))
        if self.provider_changed_at >= start:
            return semconv.DRIFT_CAUSE_PROVIDER_CHANGE
        if self.prompt_changed_at >= start:
            return semconv.DRIFT_CAUSE_PROMPT_CHANGE
        return semconv.DRIFT_CAUSE_TRAFFIC_OR_UNKNOWN

    def group(self, alarms: Sequence[Alarm]) -> list[tuple[Alarm, str, bool, tuple[str, ...]]]:
        """(alarm, kind, opens an alert, the alert's features so far) for this call's alarms.

        Alarms within ``GROUP_CALLS`` of the previous one share its cause: they join its
        alert, unless they are of a more severe kind (a content change after a latency
        shift, a provider change after either), which raises a new one.
        """
        out = []
        for alarm in sorted(alarms, key=lambda a: -SEVERITY[KIND_OF[a.feature]]):
            kind = KIND_OF[alarm.feature]
            joins = self.calls - self.alert_last <= design.GROUP_CALLS and (
                SEVERITY[kind] <= SEVERITY[self.alert_kind]
            )
            if joins:
                kind = self.alert_kind
            else:
                self.alert_kind = kind
                self.alert_features = (
                    []
                    if self.calls - self.alert_last > design.GROUP_CALLS
                    else (self.alert_features)
                )
            self.alert_features.append(alarm.feature)
            self.alert_last = self.calls
            out.append((alarm, kind, not joins, tuple(self.alert_features)))
        return out

    def _numeric_monitors(self) -> Iterator[NumericMonitor]:
        yield from (m for m in self.numeric if m is not None)
        if self.content is not None:
            yield self.content.numeric

    def scores(self) -> Iterator[tuple[str, float]]:
        """(feature, statistic / threshold) of every feature that has a trusted baseline."""
        self._flush_misses()
        for rate in self.rates:
            if rate is not None and rate.ready:
                yield rate.feature, rate.score
        for num in self._numeric_monitors():
            if num.reference.ready:
                yield num.feature, num.score
        for cat in (self.model, self.fingerprint):
            if cat.ready:
                yield cat.feature, cat.score

    def state_dict(self) -> dict[str, Any]:
        self._flush_misses()
        return {
            "rates": {m.feature: m.state_dict() for m in self.rates if m is not None},
            "numeric": {m.feature: m.state_dict() for m in self.numeric if m is not None},
            "content": self.content.state_dict() if self.content is not None else {},
            "categories": {
                m.feature: m.state_dict() for m in (self.model, self.fingerprint, self.prompt)
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        rates, numeric = dict(state.get("rates", {})), dict(state.get("numeric", {}))
        for rate in self.rates:
            if rate is not None and rate.feature in rates:
                rate.load_state_dict(rates[rate.feature])
        for num in self.numeric:
            if num is not None and num.feature in numeric:
                num.load_state_dict(numeric[num.feature])
        content = state.get("content")
        if content and self.content is not None and len(content.get("centroid", ())) == DIMS:
            self.content.load_state_dict(content)
        categories = dict(state.get("categories", {}))
        for cat in (self.model, self.fingerprint, self.prompt):
            if cat.feature in categories:
                cat.load_state_dict(categories[cat.feature])


class DriftStage:
    """Signal stage: drift per stream at a controlled false-alarm rate, with a suspected cause.

    ``arl``: calls between false alarms on an unchanged stream, all its content features
    together (rates, lengths, content); its timing features have a budget of their own.
    ``max_streams`` (LRU) and ``stream_ttl_s`` (idle streams are dropped) bound the memory;
    ``features`` restricts the watched features (default: all of ``FEATURES``), which also
    spreads the false-alarm budget over fewer detectors.
    """

    def __init__(
        self,
        *,
        arl: float = 10_000.0,
        max_streams: int = 256,
        stream_ttl_s: float = 7 * 86_400.0,
        features: Iterable[str] | None = None,
        seed: int | None = None,
        meter: Meter | None = None,
    ) -> None:
        if arl <= 1:
            raise ValueError("arl must be more than 1 call")
        chosen = set(FEATURES if features is None else features)
        unknown = chosen - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown drift feature(s) {sorted(unknown)}; known: {list(FEATURES)}")
        self.rate_features = tuple(f for f in RATE_FEATURES if f in chosen)
        self.numeric_features = tuple(f for f in NUMERIC_FEATURES if f in chosen)
        self.category_features = tuple(f for f in CATEGORY_FEATURES if f in chosen)
        self._watch_model = RESPONSE_MODEL in chosen
        self._watch_fingerprint = SYSTEM_FINGERPRINT in chosen
        per_feature = len(monitors.NUMERIC_DETECTORS)  # read now: the table may have grown
        timing = [f for f in self.numeric_features if f in TIMING_FEATURES]
        self.thresholds = {
            semconv.DRIFT_KIND_CONTENT: thresholds(
                arl,
                statistics=len(self.rate_features)
                + per_feature * (len(self.numeric_features) - len(timing)),
            ),
            # timing detectors see one median per TIMING_BLOCK calls: the budget in medians
            semconv.DRIFT_KIND_PERFORMANCE: thresholds(
                arl / design.TIMING_BLOCK, statistics=per_feature * len(timing)
            ),
        }
        self.max_streams = max_streams
        self.stream_ttl_ns = int(stream_ttl_s * 1e9)
        self.streams: OrderedDict[str, StreamState] = OrderedDict()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        meter = meter or metrics.get_meter(semconv.SCOPE_NAME)
        self._alerts = meter.create_counter(
            semconv.METRIC_DRIFT_ALERTS,
            unit="{alert}",
            description="Drift alarms per stream and feature",
        )
        meter.create_observable_gauge(
            semconv.METRIC_DRIFT_SCORE,
            callbacks=[self._observe_scores],
            unit="1",
            description="Drift statistic over its alarm threshold (1 = alarm), per stream and feature",
        )

    # -- Stage -------------------------------------------------------------------------------
    def process(self, record: SpanRecord, emit: Emit) -> None:
        span = record.span
        a = record.merged()
        get = a.get
        if get(semconv.GEN_AI_OPERATION_NAME) not in semconv.LLM_OPERATIONS:
            return
        feats = record.features
        digest = feats.system_digest if feats is not None else None
        route = get(semconv.ROUTE)
        explicit = isinstance(route, str) and bool(route)
        name = stream_name(
            str(get(semconv.GEN_AI_PROVIDER_NAME) or "unknown"),
            _str_or_none(get(semconv.GEN_AI_REQUEST_MODEL)),
            route if explicit else route_of(digest),  # type: ignore[arg-type]
        )
        record.set(semconv.DRIFT_STREAM, name)

        start, end = span.start_time, span.end_time
        latency = (
            (end - start) / 1e9 if start is not None and end is not None and end > start else None
        )
        retries = get(semconv.RETRY_COUNT)
        retried = None if retries is None else retries > 0  # type: ignore[operator]
        if semconv.ERROR_TYPE in a:  # a failed call has no output to measure
            rates: tuple[object, ...] = (None, None, None, None, None, True, retried)
            numeric: tuple[object, ...] = ()
            vector = None
        else:
            valid = get(semconv.OUTPUT_FORMAT_VALID)
            rates = (
                None if valid is None else not valid,
                get(semconv.OUTPUT_PREAMBLE),
                get(semconv.OUTPUT_CODE_FENCE),
                get(semconv.OUTPUT_REFUSAL),
                get(semconv.OUTPUT_TRUNCATED),
                False,
                retried,
            )
            tokens = get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
            ttfc = get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
            numeric = (
                get(semconv.OUTPUT_CHARS),
                tokens,
                latency,
                ttfc,
                _tokens_per_second(tokens, latency, ttfc),
            )
            vector = feats.output_vector if feats is not None else None
        model = get(semconv.GEN_AI_RESPONSE_MODEL) if self._watch_model else None
        fingerprint = (
            get(semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT) if self._watch_fingerprint else None
        )
        prompt = str(digest) if explicit and digest is not None else None

        with self._lock:
            stream = self._stream(name, end or time.time_ns())
            alarms = stream.observe(rates, numeric, vector, model, fingerprint, prompt, self._rng)
            if not alarms:
                return
            grouped = [(*g, stream.cause(g[0])) for g in stream.group(alarms)]
        for alarm, kind, alert, features, cause in grouped:
            record.add_event(
                semconv.DRIFT_EVENT,
                {
                    semconv.DRIFT_FEATURE: alarm.feature,
                    semconv.DRIFT_STATISTIC: alarm.statistic,
                    semconv.DRIFT_VALUE: alarm.value,
                    semconv.DRIFT_THRESHOLD: alarm.threshold,
                    semconv.DRIFT_STREAM: name,
                    semconv.DRIFT_SUSPECTED_CAUSE: cause,
                    semconv.DRIFT_KIND: kind,
                    semconv.DRIFT_FEATURES: features,
                    semconv.DRIFT_ALERT: alert,
                },
            )
            if alert:
                self._alerts.add(
                    1,
                    {
                        semconv.METRIC_ATTR_STREAM: name,
                        semconv.METRIC_ATTR_FEATURE: alarm.feature,
                        semconv.METRIC_ATTR_KIND: kind,
                    },
                )

    def tick(self, now_ns: int, emit: Emit) -> None:
        """Drop streams idle for longer than ``stream_ttl_s``."""
        cutoff = now_ns - self.stream_ttl_ns
        with self._lock:
            for name in [n for n, s in self.streams.items() if s.last_seen_ns < cutoff]:
                del self.streams[name]
                count_eviction("streams", semconv.EVICTED_TTL)

    def close(self, emit: Emit) -> None:
        """Nothing to flush: drift state is saved through ``state_dict()``."""

    # -- state -------------------------------------------------------------------------------
    def _stream(self, name: str, now_ns: int) -> StreamState:
        streams = self.streams
        stream = streams.get(name)
        if stream is None:
            stream = streams[name] = StreamState(
                self.thresholds, self.rate_features, self.numeric_features
            )
            if len(streams) > self.max_streams:
                streams.popitem(last=False)
                count_eviction("streams", semconv.EVICTED_CAP)
        else:
            streams.move_to_end(name)
        stream.last_seen_ns = now_ns
        return stream

    def state_dict(self) -> dict[str, Any]:
        """The learned baselines of every stream (not the running statistics), JSON-able."""
        with self._lock:
            return {
                "format": STATE_FORMAT,
                "streams": {name: s.state_dict() for name, s in self.streams.items()},
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Adopt saved baselines; a stream whose state does not fit starts fresh (a warning)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown drift state format {state.get('format')!r}")
        loaded: OrderedDict[str, StreamState] = OrderedDict()
        now = time.time_ns()
        for name, saved in list(dict(state["streams"]).items())[-self.max_streams :]:
            stream = StreamState(self.thresholds, self.rate_features, self.numeric_features)
            try:
                stream.load_state_dict(saved)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                _log.warning("drift baseline of stream %s dropped (%s)", name, exc)
                continue
            stream.last_seen_ns = now
            loaded[str(name)] = stream
        with self._lock:
            self.streams = loaded

    def _observe_scores(self, options: CallbackOptions) -> Iterator[Observation]:
        with self._lock:
            scores = [(name, list(s.scores())) for name, s in self.streams.items()]
        for name, feature_scores in scores:
            for feature, score in feature_scores:
                yield Observation(
                    score, {semconv.METRIC_ATTR_STREAM: name, semconv.METRIC_ATTR_FEATURE: feature}
                )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _tokens_per_second(tokens: object, latency: float | None, ttfc: object) -> float | None:
    """Output tokens over generation time (after the first chunk, when streamed)."""
    if not isinstance(tokens, (int, float)) or tokens <= 0 or latency is None:
        return None
    busy = latency - ttfc if isinstance(ttfc, (int, float)) and 0 < ttfc < latency else latency
    return tokens / busy
