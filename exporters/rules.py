"""Alert rules from one declarative TOML config: Prometheus rule files and Honeycomb triggers.

Prometheus rules read the metric names as the OpenTelemetry Prometheus exporter writes them
(dots become underscores, counters gain ``_total``, a seconds unit becomes ``_seconds``,
curly-brace units such as ``{call}`` vanish; checked against a real scrape in the tests).
Every series carries ``otel_scope_*`` labels, so each expression aggregates with
``sum by (...)``. Honeycomb triggers query the span attributes the pipeline sets.

Config (every key optional; ``default_alerts()`` holds the defaults: ``DEFAULT_ALERTS``, plus
``friction_<kind>`` for each friction kind whose entry in the kind table sets ``alert``)::

    [links]
    trace_url = "http://localhost:16686/search?service={service}&tags={tags}"
    service = "llm-app"

    [honeycomb]
    frequency = 300          # seconds between trigger evaluations

    [alerts.drift]
    threshold = 0            # alert when more drift alarms than this in the window
    window = "15m"
    for = "0s"
    severity = "warning"
    enabled = true
"""

from __future__ import annotations

import json
import math
import re
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from frictionlens import semconv
from frictionlens.processors.friction import kinds as friction_kinds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tomli backport on Python 3.10
    import tomli as tomllib

TARGETS = ("prometheus", "honeycomb")
DEFAULT_TRACE_URL = "http://localhost:16686/search?service={service}&tags={tags}"
DEFAULT_SERVICE = "llm-app"
DEFAULT_HONEYCOMB_FREQUENCY_S = 300
#: Honeycomb evaluates a trigger up to this many times before it fires (threshold.exceeded_limit)
HONEYCOMB_MAX_EXCEEDED = 5

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _metric(name: str, suffix: str = "") -> str:
    """The Prometheus name the OpenTelemetry exporter gives an instrument."""
    return name.replace(".", "_") + suffix


# Prometheus series (verified against a scrape of an instrumented app)
CONVERSATIONS = _metric(semconv.METRIC_CONVERSATIONS, "_total")
DRIFT_ALERTS = _metric(semconv.METRIC_DRIFT_ALERTS, "_total")
_NOT_PERFORMANCE = (
    f'{DRIFT_ALERTS}{{{semconv.METRIC_ATTR_KIND}!="{semconv.DRIFT_KIND_PERFORMANCE}"}}'
)
_PERFORMANCE = f'{DRIFT_ALERTS}{{{semconv.METRIC_ATTR_KIND}="{semconv.DRIFT_KIND_PERFORMANCE}"}}'
FORMAT_FAILURES = _metric(semconv.METRIC_FORMAT_FAILURES, "_total")
OUTPUT_LENGTH_COUNT = _metric(semconv.METRIC_OUTPUT_LENGTH, "_count")
RETRIES = _metric(semconv.METRIC_RETRIES, "_total")
FRICTION_EVENTS = _metric(semconv.METRIC_FRICTION_EVENTS, "_total")
OPERATION_DURATION_COUNT = _metric(semconv.METRIC_GEN_AI_OPERATION_DURATION, "_seconds_count")
TRAJECTORY_EFFICIENCY = _metric(semconv.METRIC_TRAJECTORY_EFFICIENCY)
TRAJECTORY_OUTCOMES = _metric(semconv.METRIC_TRAJECTORY_OUTCOMES, "_total")


@dataclass(frozen=True)
class Alert:
    """One alert: what it watches, when it fires and how loudly."""

    name: str
    threshold: float
    window: str
    for_: str
    severity: str
    enabled: bool = True

    @property
    def window_s(self) -> int:
        return duration_s(self.window)


@dataclass(frozen=True)
class _Kind:
    """What an alert measures, per target."""

    title: str
    summary: str
    op: str  # ">" fires above the threshold, "<" below it
    by: tuple[str, ...]  # Prometheus labels the value is broken down by
    promql: str  # with {w} for the window
    honeycomb: dict[str, Any]  # query spec without time_range
    trace_filter: dict[str, Any]  # span attributes of the traces worth opening
    per_hour: bool = False  # the threshold is a count per hour (Honeycomb counts per window)


def _drift_kind(title: str, summary: str, *, performance: bool) -> _Kind:
    """Drift alerts of the timing kind (``performance``) or of every other kind."""
    series = _PERFORMANCE if performance else _NOT_PERFORMANCE
    return _Kind(
        title,
        summary,
        ">",
        (semconv.METRIC_ATTR_STREAM, semconv.METRIC_ATTR_FEATURE),
        # a stream's first alarm creates its series at 1, which increase() cannot see
        f"(sum by (stream, feature) (increase({series}[{{w}}])) > 0)"
        f" or sum by (stream, feature) ({series} unless {series} offset {{w}})",
        {
            "calculations": [{"op": "COUNT"}],
            "filters": [
                {"column": "name", "op": "=", "value": semconv.DRIFT_EVENT},
                {"column": semconv.DRIFT_ALERT, "op": "!=", "value": False},
                {
                    "column": semconv.DRIFT_KIND,
                    "op": "=" if performance else "!=",
                    "value": semconv.DRIFT_KIND_PERFORMANCE,
                },
            ],
            "breakdowns": [semconv.DRIFT_STREAM, semconv.DRIFT_FEATURE],
        },
        {} if performance else {semconv.REVIEW_NEEDED: True},
    )


def _ratio(num: str, den: str, by: str) -> str:
    """A ratio that is absent, not infinite, while the denominator is zero."""
    agg = f"sum by ({by})" if by else "sum"
    den_rate = f"{agg} (rate({den}[{{w}}]))"
    # "or 0 * den": a numerator with no series yet (no task ever succeeded) reads as 0
    return f"({agg} (rate({num}[{{w}}])) or 0 * {den_rate}) / ({den_rate} > 0)"


def _share(column_expr: str) -> dict[str, Any]:
    """Honeycomb: the average of a 0/1 calculated field is the share of spans where it is 1."""
    return {
        "calculated_fields": [{"name": "hit", "expression": f"IF({column_expr}, 1, 0)"}],
        "calculations": [{"op": "AVG", "column": "hit"}],
    }


_LLM_CALL = {
    "column": semconv.GEN_AI_OPERATION_NAME,
    "op": "in",
    "value": sorted(semconv.LLM_OPERATIONS),
}
_SUMMARY = {"column": "name", "op": "=", "value": semconv.CONVERSATION_SPAN}
_TASK_ROOT = {"column": semconv.TRAJECTORY_OUTCOME, "op": "exists"}
_OUT, _TASK = semconv.METRIC_ATTR_OUTCOME, semconv.METRIC_ATTR_TASK

KINDS: dict[str, _Kind] = {
    "friction_rate": _Kind(
        "FrictionRateHigh",
        "Many conversations hit friction",
        ">",
        (),
        _ratio(
            f'{CONVERSATIONS}{{{_OUT}!="{semconv.CONVERSATION_OUTCOME_SMOOTH}"}}', CONVERSATIONS, ""
        ),
        {
            **_share(
                f'NOT(EQUALS(${semconv.CONVERSATION_OUTCOME}, "{semconv.CONVERSATION_OUTCOME_SMOOTH}"))'
            ),
            "filters": [_SUMMARY],
        },
        {semconv.REVIEW_NEEDED: True},
    ),
    "review_needed": _Kind(
        "ReviewNeededConversations",
        "Conversations need human review",
        ">",
        (),
        f'sum(rate({CONVERSATIONS}{{{semconv.METRIC_ATTR_REVIEW_NEEDED}="true"}}[{{w}}])) * 3600',
        {
            "calculations": [{"op": "COUNT"}],
            "filters": [_SUMMARY, {"column": semconv.REVIEW_NEEDED, "op": "=", "value": True}],
        },
        {semconv.REVIEW_NEEDED: True},
        per_hour=True,
    ),
    # timing alone (kind performance) moves with the host's load: not alerted by default
    "drift": _drift_kind("OutputDrift", "LLM output drifted from its baseline", performance=False),
    "performance_drift": _drift_kind(
        "PerformanceDrift", "LLM call timing drifted from its baseline", performance=True
    ),
    "format_failure_rate": _Kind(
        "FormatFailureRateHigh",
        "Outputs break their expected format",
        ">",
        (semconv.METRIC_ATTR_STREAM,),
        _ratio(FORMAT_FAILURES, OUTPUT_LENGTH_COUNT, semconv.METRIC_ATTR_STREAM),
        {
            **_share(f"EQUALS(${semconv.OUTPUT_FORMAT_VALID}, false)"),
            "filters": [{"column": semconv.OUTPUT_FORMAT_VALID, "op": "exists"}],
            "breakdowns": [semconv.DRIFT_STREAM],
        },
        {semconv.OUTPUT_FORMAT_VALID: False},
    ),
    "retry_rate": _Kind(
        "RetryRateHigh",
        "SDK calls retry often",
        ">",
        (semconv.METRIC_ATTR_PROVIDER, semconv.METRIC_ATTR_MODEL),
        # the duration histogram counts every call; its labels are the GenAI attribute names
        f"sum by (provider, model) (rate({RETRIES}[{{w}}])) / (sum by (provider, model) (label_replace(label_replace("
        f'rate({OPERATION_DURATION_COUNT}[{{w}}]), "provider", "$1", '
        f'"{_metric(semconv.GEN_AI_PROVIDER_NAME)}", "(.*)"),'
        f' "model", "$1", "{_metric(semconv.GEN_AI_REQUEST_MODEL)}", "(.*)")) > 0)',
        {
            "calculations": [{"op": "AVG", "column": semconv.RETRY_COUNT}],
            "filters": [_LLM_CALL],
            "breakdowns": [semconv.GEN_AI_PROVIDER_NAME, semconv.GEN_AI_REQUEST_MODEL],
        },
        {},
    ),
    "trajectory_efficiency": _Kind(
        "TrajectoryEfficiencyLow",
        "Agent tasks take more steps than their budget",
        "<",
        (_TASK,),
        _ratio(f"{TRAJECTORY_EFFICIENCY}_sum", f"{TRAJECTORY_EFFICIENCY}_count", _TASK),
        {
            "calculations": [{"op": "AVG", "column": semconv.TRAJECTORY_EFFICIENCY}],
            "filters": [{"column": semconv.TRAJECTORY_EFFICIENCY, "op": "exists"}],
            "breakdowns": [semconv.TRAJECTORY_TASK],
        },
        {semconv.TRAJECTORY_BRUTE_FORCE: True},
    ),
    "brute_force_rate": _Kind(
        "AgentBruteForcing",
        "Agent tasks brute-force",
        ">",
        (_TASK,),
        _ratio(
            f'{TRAJECTORY_OUTCOMES}{{{semconv.METRIC_ATTR_BRUTE_FORCE}="true"}}',
            TRAJECTORY_OUTCOMES,
            _TASK,
        ),
        {
            **_share(f"EQUALS(${semconv.TRAJECTORY_BRUTE_FORCE}, true)"),
            "filters": [_TASK_ROOT],
            "breakdowns": [semconv.TRAJECTORY_TASK],
        },
        {semconv.TRAJECTORY_BRUTE_FORCE: True},
    ),
    "task_success": _Kind(
        "TaskSuccessLow",
        "Agent tasks fail end to end",
        "<",
        (_TASK,),
        _ratio(
            f'{TRAJECTORY_OUTCOMES}{{{_OUT}="{semconv.TRAJECTORY_OUTCOME_SUCCESS}"}}',
            TRAJECTORY_OUTCOMES,
            _TASK,
        ),
        {
            **_share(
                f'EQUALS(${semconv.TRAJECTORY_OUTCOME}, "{semconv.TRAJECTORY_OUTCOME_SUCCESS}")'
            ),
            "filters": [_TASK_ROOT],
            "breakdowns": [semconv.TRAJECTORY_TASK],
        },
        {semconv.TRAJECTORY_OUTCOME: semconv.TRAJECTORY_OUTCOME_FAILURE},
    ),
}


def _friction_kind(name: str) -> _Kind:
    """The share of LLM calls showing one friction kind (an alert a kind asks for itself)."""
    return _Kind(
        f"Friction{name.title().replace('_', '')}High",
        f"Many calls show {name.replace('_', ' ')} friction",
        ">",
        (),
        _ratio(
            f'{FRICTION_EVENTS}{{{semconv.METRIC_ATTR_KIND}="{name}"}}',
            OPERATION_DURATION_COUNT,
            "",
        ),
        {
            **_share(f'EQUALS(${semconv.FRICTION_KIND}, "{name}")'),
            "filters": [_LLM_CALL],
        },
        {semconv.FRICTION_KIND: name},
    )


def measures() -> dict[str, _Kind]:
    """What each alert measures: ``KINDS`` and one per friction kind that sets ``alert``."""
    own = {
        f"friction_{name}": _friction_kind(name)
        for name, kind in friction_kinds.KINDS.items()
        if kind.alert is not None
    }
    return {**KINDS, **own}


def default_alerts() -> dict[str, Alert]:
    """Every alert with its defaults (see the module docstring)."""
    own = {
        f"friction_{name}": Alert(f"friction_{name}", kind.alert, "1h", "15m", "warning")
        for name, kind in friction_kinds.KINDS.items()
        if kind.alert is not None
    }
    return {**DEFAULT_ALERTS, **own}


DEFAULT_ALERTS: dict[str, Alert] = {
    "friction_rate": Alert("friction_rate", 0.3, "1h", "15m", "warning"),
    "review_needed": Alert("review_needed", 20, "1h", "5m", "warning"),
    "drift": Alert("drift", 0, "15m", "0s", "warning"),
    # timing alone moves with the host's and the provider's load: opt in
    "performance_drift": Alert("performance_drift", 0, "15m", "0s", "warning", enabled=False),
    "format_failure_rate": Alert("format_failure_rate", 0.05, "15m", "10m", "critical"),
    "retry_rate": Alert("retry_rate", 0.1, "15m", "10m", "warning"),
    "trajectory_efficiency": Alert("trajectory_efficiency", 0.67, "1h", "15m", "warning"),
    "brute_force_rate": Alert("brute_force_rate", 0.2, "1h", "15m", "warning"),
    "task_success": Alert("task_success", 0.8, "1h", "15m", "critical"),
}


@dataclass(frozen=True)
class RulesConfig:
    """The parsed config: alerts plus where their links point."""

    alerts: tuple[Alert, ...]
    trace_url: str = DEFAULT_TRACE_URL
    service: str = DEFAULT_SERVICE
    honeycomb_frequency_s: int = DEFAULT_HONEYCOMB_FREQUENCY_S

    @classmethod
    def load(cls, path: str | Path | None = None) -> RulesConfig:
        """Read a TOML file; no path gives the defaults."""
        if path is None:
            return cls.from_mapping({})
        with open(path, "rb") as f:
            return cls.from_mapping(tomllib.load(f))

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> RulesConfig:
        unknown = set(doc) - {"alerts", "links", "honeycomb"}
        if unknown:
            raise ValueError(f"unknown section(s) {sorted(unknown)}: use alerts, links, honeycomb")
        given = doc.get("alerts", {})
        defaults = default_alerts()
        bad = set(given) - set(defaults)
        if bad:
            raise ValueError(f"unknown alert(s) {sorted(bad)}; known: {list(defaults)}")
        alerts = tuple(_alert(defaults[name], given.get(name, {})) for name in defaults)
        links = doc.get("links", {})
        frequency = int(doc.get("honeycomb", {}).get("frequency", DEFAULT_HONEYCOMB_FREQUENCY_S))
        if frequency < 60 or frequency % 60:
            raise ValueError("honeycomb.frequency must be a multiple of 60 seconds")
        return cls(
            alerts,
            str(links.get("trace_url", DEFAULT_TRACE_URL)),
            str(links.get("service", DEFAULT_SERVICE)),
            frequency,
        )

    def trace_link(self, kind: _Kind) -> str:
        tags = urllib.parse.quote(
            json.dumps(
                {
                    k: str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in kind.trace_filter.items()
                },
                separators=(",", ":"),
            )
        )
        return self.trace_url.format(service=urllib.parse.quote(self.service), tags=tags)


def duration_s(text: str) -> int:
    """Seconds of a Prometheus-style duration such as ``1h30m``."""
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None:
        raise ValueError(f"bad duration {text!r}: use e.g. 30s, 15m, 1h, 1d")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def _alert(default: Alert, given: Mapping[str, Any]) -> Alert:
    unknown = set(given) - {"threshold", "window", "for", "severity", "enabled"}
    if unknown:
        raise ValueError(f"alert {default.name}: unknown key(s) {sorted(unknown)}")
    alert = replace(
        default,
        threshold=float(given.get("threshold", default.threshold)),
        window=str(given.get("window", default.window)),
        for_=str(given.get("for", default.for_)),
        severity=str(given.get("severity", default.severity)),
        enabled=bool(given.get("enabled", default.enabled)),
    )
    if alert.window_s <= 0:
        raise ValueError(f"alert {alert.name}: window must be positive")
    duration_s(alert.for_)
    return alert


# -- Prometheus ------------------------------------------------------------------------------
def record_name(alert: Alert) -> str:
    """The recording rule holding an alert's value (``level:metric:window``)."""
    return f"frictionlens:{alert.name}:{alert.window}"


def prometheus_rules(config: RulesConfig) -> str:
    """A Prometheus rule file: one recording and one alerting rule per enabled alert."""
    records, alerts = [], []
    measured = measures()
    for alert in config.alerts:
        if not alert.enabled:
            continue
        kind = measured[alert.name]
        rec = record_name(alert)
        records.append({"record": rec, "expr": kind.promql.replace("{w}", alert.window)})
        by = ", ".join(f"{label}={{{{ $labels.{label} }}}}" for label in kind.by)
        alerts.append(
            {
                "alert": kind.title,
                "expr": f"{rec} {kind.op} {_num(alert.threshold)}",
                "for": alert.for_,
                "labels": {
                    "severity": alert.severity,
                    "source": "frictionlens",
                    "signal": alert.name,
                },
                "annotations": {
                    "summary": kind.summary + (f" ({by})" if by else ""),
                    "description": f'{alert.name} is {{{{ $value | printf "%.3g" }}}} over {alert.window}'
                    f" (alert when {kind.op} {_num(alert.threshold)}).",
                    "trace_url": config.trace_link(kind),
                },
            }
        )
    # one group: its rules run in order, so each alert reads its record of the same evaluation
    return _yaml({"groups": [{"name": "frictionlens", "rules": records + alerts}]})


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for nested dicts / lists of strings and numbers (strings JSON-quoted, valid YAML)."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                out.append(f"{pad}{k}:\n{_yaml(v, indent + 2)}")
            else:
                out.append(f"{pad}{k}: {json.dumps(v)}\n")
    else:
        for item in value:
            body = _yaml(item, indent + 2)
            out.append(f"{pad}- {body[indent + 2 :]}")
    return "".join(out)


# -- Honeycomb -------------------------------------------------------------------------------
def honeycomb_triggers(config: RulesConfig) -> str:
    """Trigger definitions for ``POST /1/triggers/{dataset}``, one JSON object each, as a list."""
    freq = config.honeycomb_frequency_s
    triggers = []
    measured = measures()
    for alert in config.alerts:
        if not alert.enabled:
            continue
        kind = measured[alert.name]
        query = {**kind.honeycomb, "time_range": alert.window_s}
        exceeded = min(HONEYCOMB_MAX_EXCEEDED, 1 + math.ceil(duration_s(alert.for_) / freq))
        triggers.append(
            {
                "name": f"frictionlens: {kind.summary}",
                "description": f"{alert.name} {kind.op} {_num(alert.threshold)} over {alert.window} "
                f"(severity {alert.severity}). Traces: {config.trace_link(kind)}",
                "disabled": False,
                "query": query,
                "threshold": {
                    "op": kind.op,
                    "exceeded_limit": exceeded,
                    "value": alert.threshold * alert.window_s / 3600
                    if kind.per_hour
                    else alert.threshold,
                },
                "frequency": freq,
                "alert_type": "on_change",
                "recipients": [],
            }
        )
    return json.dumps(triggers, indent=2) + "\n"


def generate(target: str, config: RulesConfig) -> str:
    """The rules text for ``target`` (``prometheus`` or ``honeycomb``)."""
    if target == "prometheus":
        return prometheus_rules(config)
    if target == "honeycomb":
        return honeycomb_triggers(config)
    raise ValueError(f"unknown target {target!r}: use {' or '.join(TARGETS)}")
