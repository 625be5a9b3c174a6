"""Options of ``frictionlens.instrument()``: keyword arguments, else ``FRICTIONLENS_*`` variables.

Standard OpenTelemetry variables (``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME``,
``OTEL_METRIC_EXPORT_INTERVAL``…) are read by the OpenTelemetry SDK itself, unchanged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from frictionlens import semconv

ENV_PREFIX = "FRICTIONLENS_"
SALT_FILE = "salt"


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(value: str) -> list[str] | bool:
    v = value.strip().lower()
    if v in {"", "all", "true", "1"}:
        return True
    if v in {"none", "false", "0"}:
        return False
    return [p.strip() for p in value.split(",") if p.strip()]


@dataclass
class Options:
    """Every option; the env variable is ``FRICTIONLENS_`` + the upper-case field name."""

    exporter: str = "auto"
    """``auto`` (OTLP when an OTLP endpoint is configured, else ``file``), ``otlp``, ``file``,
    ``console`` or ``none``."""
    data_dir: Path = field(default_factory=lambda: Path(".frictionlens"))
    """local store (OTLP-JSON lines), salt and baselines"""
    providers: list[str] | bool = True
    """SDKs to instrument: True = every supported SDK that is importable, False = pipeline only"""
    salt: str | None = None
    """salt for message hashes; share it between replicas and the collector so ids agree.
    Default: generated once and kept in ``data_dir/salt``."""
    capture_content: bool = False
    """record prompt/completion text (GenAI content attributes). Env:
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"""
    content_max_chars: int = 4096
    """captured content is truncated to this many characters"""
    conversation_timeout_s: float = 1800.0
    """a conversation idle this long is closed and summarised"""
    sample_rate: float = 1.0
    """signal-based sampling, opt-in: below 1, flagged traces and conversations are kept
    whole and this fraction of the other traces; 1.0 (the default) exports every span"""
    drift_arl: float = 10_000.0
    """expected calls between false drift alarms on an unchanged stream"""
    drift_features: list[str] | bool = True
    """drift features to watch: True = all; e.g. leave out ``latency`` and ``tokens_per_second``
    where the host's load, not the provider, moves them (fewer features also share the
    false-alarm budget among fewer detectors)"""
    disabled: bool = False
    """turn frictionlens off entirely (instrument() does nothing)"""
    prometheus_port: int | None = None
    """serve metrics for Prometheus to scrape on this port (beside any other exporter).
    Also on with the standard ``OTEL_METRICS_EXPORTER=prometheus`` (port
    ``OTEL_EXPORTER_PROMETHEUS_PORT``, default 9464)"""
    prometheus_host: str = "localhost"
    """address the Prometheus endpoint listens on. Env also: OTEL_EXPORTER_PROMETHEUS_HOST"""

    @classmethod
    def resolve(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Options:
        """Keyword arguments win over ``FRICTIONLENS_*`` variables, which win over defaults."""
        env = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        known = {f.name: f for f in fields(cls)}
        unknown = set(overrides) - set(known)
        if unknown:
            raise TypeError(f"unknown frictionlens option(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, _f in known.items():
            if name in overrides:
                values[name] = overrides[name]
                continue
            raw = env.get(ENV_PREFIX + name.upper())
            if name == "capture_content" and raw is None:
                raw = env.get(semconv.CAPTURE_CONTENT_ENV)
            if raw is None and name in _PROMETHEUS_OTEL_ENV:
                raw = _otel_prometheus(name, env)
            if raw is None:
                continue
            values[name] = _parse(name, raw)
        opts = cls(**values)
        opts.data_dir = Path(opts.data_dir)
        if not 0.0 <= float(opts.sample_rate) <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        return opts

    def salt_bytes(self) -> bytes:
        """The deployment salt: configured, else kept in the data dir (created once)."""
        if self.salt:
            return self.salt.encode("utf-8")
        path = self.data_dir / SALT_FILE
        try:
            return path.read_text("ascii").strip().encode("ascii")
        except (OSError, UnicodeDecodeError):
            pass
        value = secrets.token_hex(16)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(value, "ascii")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only disk still gets a per-process salt
        return value.encode("ascii")


#: option -> (standard OpenTelemetry variable, its default when OTEL_METRICS_EXPORTER has prometheus)
_PROMETHEUS_OTEL_ENV = {
    "prometheus_port": (semconv.OTEL_PROMETHEUS_PORT_ENV, "9464"),
    "prometheus_host": (semconv.OTEL_PROMETHEUS_HOST_ENV, None),
}


def _otel_prometheus(name: str, env: Mapping[str, str]) -> str | None:
    """The standard variables, honoured only when they ask for the Prometheus exporter."""
    wanted = {p.strip().lower() for p in env.get(semconv.OTEL_METRICS_EXPORTER_ENV, "").split(",")}
    if semconv.OTEL_METRICS_EXPORTER_PROMETHEUS not in wanted:
        return None
    var, default = _PROMETHEUS_OTEL_ENV[name]
    return env.get(var, default)


def _parse(name: str, raw: str) -> Any:
    if name in {"capture_content", "disabled"}:
        return _env_bool(raw)
    if name in {"providers", "drift_features"}:
        return _env_list(raw)
    if name in {"conversation_timeout_s", "sample_rate", "drift_arl"}:
        return float(raw)
    if name == "content_max_chars":
        return int(raw)
    if name == "prometheus_port":
        return int(raw) if raw.strip() else None
    if name == "exporter":
        return raw.strip().lower()
    return raw
