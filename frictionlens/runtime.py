"""What ``instrument()`` sets up and ``uninstrument()`` takes down.

With no OpenTelemetry SDK configured by the app, frictionlens creates the tracer and meter
providers (exporting over OTLP when an endpoint is configured, else to the local store).
With an app's SDK tracer provider, the SignalPipeline goes in front of the app's own span
processors, so whatever the app exports carries our signals.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from frictionlens import health, semconv
from frictionlens.config import Options
from frictionlens.exporters import otlp
from frictionlens.exporters.delivery import CountedBatchSpanProcessor
from frictionlens.exporters.filestore import FileMetricExporter, FileSpanExporter
from frictionlens.instrumentation.streams import end_open_streams
from frictionlens.instrumentation.telemetry import Telemetry
from frictionlens.processors.meter import BatchingMeter
from frictionlens.processors.persistence import FILE_NAME as STATE_FILE
from frictionlens.processors.persistence import StateFile
from frictionlens.processors.pipeline import SignalPipeline, Stage

_log = logging.getLogger(__name__)

#: provider name -> (module that must be importable, instrumentor "module:Class")
SUPPORTED_PROVIDERS: dict[str, tuple[str, str]] = {
    "openai": ("openai", "frictionlens.instrumentation.openai:OpenAIInstrumentor"),
    "anthropic": ("anthropic", "frictionlens.instrumentation.anthropic:AnthropicInstrumentor"),
    "litellm": ("litellm", "frictionlens.instrumentation.litellm:LiteLLMInstrumentor"),
}


@dataclass
class _Installed:
    options: Options
    pipeline: SignalPipeline
    tracer_provider: TracerProvider
    meter: BatchingMeter
    telemetry: Telemetry
    owned_tracer_provider: bool
    app_processors: tuple[SpanProcessor, ...] | None = None
    owned_meter_provider: MeterProvider | None = None
    instrumentors: list[BaseInstrumentor] = field(default_factory=list)
    persistent: dict[str, Any] = field(default_factory=dict)
    """stages whose learned state (drift baselines, step budgets) survives restarts"""


#: stage class -> its section in the state file
_STATE_SECTIONS = {"DriftStage": "drift", "TrajectoryStage": "trajectory"}

_lock = threading.RLock()
_state: _Installed | None = None
_atexit_registered = False
#: providers frictionlens created (and set globally): reused, not wrapped, on a later install
_own_providers: weakref.WeakSet[Any] = weakref.WeakSet()


def installed() -> _Installed | None:
    return _state


def install(**overrides: Any) -> None:
    """See ``frictionlens.instrument``."""
    global _state, _atexit_registered
    tracer_provider = overrides.pop("tracer_provider", None)
    meter_provider = overrides.pop("meter_provider", None)
    options = Options.resolve(overrides)
    if options.disabled:
        return
    with _lock:
        if _state is not None:
            return
        salt = options.salt_bytes()
        meter_provider_owned, sdk_meter = _meter(options, meter_provider)
        meter = BatchingMeter(sdk_meter)  # counters add once per collection
        health.bind_meter(meter)
        stages = build_stages(options, meter, salt)
        persistent = persistent_stages(stages)
        StateFile(options.data_dir / STATE_FILE).restore_stages(persistent)
        pipeline = SignalPipeline(stages, background=True)
        tp, owned_tp, app_processors = _attach_pipeline(options, pipeline, tracer_provider, meter)
        telemetry = Telemetry(
            tp,
            meter,
            salt=salt,
            capture_content=options.capture_content,
            content_max_chars=options.content_max_chars,
            defer=pipeline.submit,
        )
        _state = _Installed(
            options,
            pipeline,
            tp,
            meter,
            telemetry,
            owned_tp,
            app_processors,
            meter_provider_owned,
            persistent=persistent,
        )
        _state.instrumentors = _instrument_providers(options, telemetry, tp)
        if not _atexit_registered:
            atexit.register(uninstall)
            _atexit_registered = True


def uninstall() -> None:
    """Remove the wrappers, close open streams, conversations and tasks, export everything.

    Also what interpreter exit runs. Spans and metric points go out side by side, each
    waiting at most its exporter's timeout, so a backend that is down at exit costs that
    long, once; the export stage counts and logs what it could not send."""
    global _state
    with _lock:
        state, _state = _state, None
    if state is None:
        return
    end_open_streams()
    for inst in state.instrumentors:
        try:
            inst.uninstrument()
        except Exception:
            _log.debug("uninstrumenting %s failed", type(inst).__name__, exc_info=True)
    state.pipeline.close_stages()
    if state.persistent:
        StateFile(state.options.data_dir / STATE_FILE).save_stages(state.persistent)
    state.meter.flush()  # counter sums and histogram values still waiting for a collection
    started = time.monotonic()
    metrics_timeout_s = otlp.export_timeout_s("metrics")
    metrics_done = _in_background(_shutdown_meter, state.owned_meter_provider, metrics_timeout_s)
    if state.app_processors is not None:
        state.pipeline.force_flush()
        active = state.tracer_provider._active_span_processor  # pylint: disable=protected-access
        active._span_processors = state.app_processors  # pylint: disable=protected-access
    else:
        state.pipeline.shutdown()
        active = getattr(state.tracer_provider, "_active_span_processor", None)
        if isinstance(active, SynchronousMultiSpanProcessor):
            active._span_processors = ()  # pylint: disable=protected-access
    if metrics_done is not None:
        metrics_done.join(metrics_timeout_s + 1.0)
    else:  # after the spans, in what is left of the same time
        left = metrics_timeout_s - (time.monotonic() - started)
        _shutdown_meter(state.owned_meter_provider, max(left, 0.0))
    health.bind_meter(None)


def _shutdown_meter(provider: MeterProvider | None, timeout_s: float) -> None:
    """The last collection and export, waiting at most ``timeout_s``."""
    if provider is None:
        return
    try:
        provider.shutdown(timeout_millis=timeout_s * 1000)
    except Exception:
        _log.debug("meter provider shutdown failed", exc_info=True)


def _in_background(work: Callable[..., None], *args: Any) -> threading.Thread | None:
    """Run ``work(*args)`` on a helper thread; None when no thread can start (Python 3.12.1
    refuses them in exit hooks)."""
    helper = threading.Thread(target=work, args=args, name="frictionlens-exit", daemon=True)
    try:
        helper.start()
    except RuntimeError:
        return None
    return helper


def tracer() -> trace.Tracer:
    """The tracer frictionlens' own spans (tasks, tools, feedback) start from."""
    from frictionlens import __version__

    state = _state
    provider = state.tracer_provider if state is not None else None
    return trace.get_tracer(semconv.SCOPE_NAME, __version__, tracer_provider=provider)


def telemetry_for_auto_instrumentation(
    tracer_provider: Any = None, meter_provider: Any = None
) -> Telemetry:
    """For ``opentelemetry-instrument``: install the pipeline (no wrappers of its own) and share it."""
    install(providers=False, tracer_provider=tracer_provider, meter_provider=meter_provider)
    state = _state
    if state is None:  # disabled: instrument calls, but feed no pipeline
        options = Options.resolve()
        return Telemetry(
            tracer_provider, metrics.get_meter(semconv.SCOPE_NAME), salt=options.salt_bytes()
        )
    return state.telemetry


def build_stages(options: Options, meter: Meter, salt: bytes) -> list[Stage]:
    """The stage chain (docs/architecture.md): the normalizer first, so spans other GenAI
    instrumentations made read like ours, then friction -> trajectory -> drift, each seeing
    what the stages before it added to the span."""
    from frictionlens.processors.drift import DriftStage
    from frictionlens.processors.friction import FrictionStage
    from frictionlens.processors.normalize import Normalizer
    from frictionlens.processors.trajectory import TrajectoryStage

    return [
        Normalizer(salt),
        FrictionStage(idle_timeout_s=options.conversation_timeout_s, meter=meter),
        TrajectoryStage(meter=meter),
        DriftStage(arl=options.drift_arl, meter=meter, features=_drift_features(options)),
    ]


def _drift_features(options: Options) -> list[str] | None:
    chosen = options.drift_features
    return None if chosen is True else list(chosen or ())


def persistent_stages(stages: list[Stage]) -> dict[str, Any]:
    """State-file section -> stage, for the stages whose learned state survives restarts."""
    return {name: st for st in stages for name in [_STATE_SECTIONS.get(type(st).__name__)] if name}


# -- wiring --------------------------------------------------------------------------------
def _exporter_kind(options: Options) -> str:
    kind = options.exporter
    if kind == "auto":
        return "otlp" if otlp.endpoint_configured() else "file"
    if kind not in ("otlp", "file", "console", "none"):
        raise ValueError(f"unknown exporter {kind!r}: use auto, otlp, file, console or none")
    return kind


def _span_exporter(options: Options) -> SpanExporter | None:
    kind = _exporter_kind(options)
    if kind == "otlp":
        return otlp.span_exporter()
    if kind == "file":
        return FileSpanExporter(options.data_dir)
    if kind == "console":
        return ConsoleSpanExporter()
    return None


def _metric_reader(options: Options) -> MetricReader | None:
    kind = _exporter_kind(options)
    exporter = {
        "otlp": otlp.metric_exporter,
        "file": lambda: FileMetricExporter(options.data_dir),
        "console": ConsoleMetricExporter,
    }.get(kind)
    return None if exporter is None else PeriodicExportingMetricReader(exporter())


def _meter(options: Options, given: Any) -> tuple[MeterProvider | None, Meter]:
    from frictionlens import __version__

    if given is not None:
        return None, given.get_meter(semconv.SCOPE_NAME, __version__)
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider) and current not in _own_providers:
        return None, current.get_meter(semconv.SCOPE_NAME, __version__)
    reader = _metric_reader(options)
    readers = [reader] if reader else []
    views = []
    if options.prometheus_port is not None:
        try:
            from frictionlens.exporters import prometheus

            readers.append(
                prometheus.ServedPrometheusReader(options.prometheus_host, options.prometheus_port)
            )
            views = prometheus.views()
        except (
            ImportError,
            OSError,
        ):  # extra missing or port taken: the app runs on, without the endpoint
            _log.warning(
                "frictionlens: no Prometheus endpoint on %s:%s",
                options.prometheus_host,
                options.prometheus_port,
                exc_info=True,
            )
            health.count_internal_error("prometheus")
    provider = MeterProvider(resource=Resource.create(), metric_readers=readers, views=views)
    _own_providers.add(provider)
    if type(current).__name__ in ("_ProxyMeterProvider", "ProxyMeterProvider"):
        metrics.set_meter_provider(provider)
    return provider, provider.get_meter(semconv.SCOPE_NAME, __version__)


def _attach_pipeline(
    options: Options, pipeline: SignalPipeline, given: Any, meter: Meter
) -> tuple[TracerProvider, bool, tuple[SpanProcessor, ...] | None]:
    """Put the pipeline in front of the app's processors, or build our own provider."""
    provider = given if given is not None else trace.get_tracer_provider()
    if provider in _own_providers:
        pipeline.downstream = _export_stage(options, meter)
        provider.add_span_processor(pipeline)
        return provider, True, None
    if isinstance(provider, TracerProvider):
        active = getattr(provider, "_active_span_processor", None)
        existing = getattr(active, "_span_processors", None)
        if isinstance(active, SynchronousMultiSpanProcessor) and isinstance(existing, tuple):
            downstream = SynchronousMultiSpanProcessor()
            for proc in existing:
                downstream.add_span_processor(proc)
            pipeline.downstream = downstream
            active._span_processors = (pipeline,)  # pylint: disable=protected-access
            return provider, False, existing
        provider.add_span_processor(pipeline)  # an unusual SDK setup: export our own way beside it
        pipeline.downstream = _export_stage(options, meter)
        return provider, False, None
    own = TracerProvider(resource=Resource.create())
    _own_providers.add(own)
    pipeline.downstream = _export_stage(options, meter)
    own.add_span_processor(pipeline)
    if type(provider).__name__ == "ProxyTracerProvider":
        trace.set_tracer_provider(own)
    return own, True, None


def _export_stage(options: Options, meter: Meter) -> SpanProcessor:
    """The batch exporter, behind signal-based sampling when it is on."""
    exporter = _span_exporter(options)
    if exporter is None:
        return SpanProcessor()
    export = CountedBatchSpanProcessor(
        exporter, meter=meter, shutdown_timeout_s=otlp.export_timeout_s("traces")
    )
    return sampled(export, options, meter)


def sampled(export: SpanProcessor, options: Options, meter: Meter) -> SpanProcessor:
    """``export`` behind signal-based sampling (itself when every span is kept)."""
    if options.sample_rate >= 1.0:
        return export
    from frictionlens.exporters.sampling import SignalSampler

    return SignalSampler(
        export,
        rate=options.sample_rate,
        conversation_hold_s=options.conversation_timeout_s,
        meter=meter,
    )


def _instrument_providers(
    options: Options, telemetry: Telemetry, tp: TracerProvider
) -> list[BaseInstrumentor]:
    wanted = options.providers
    if wanted is False:
        return []
    names = list(SUPPORTED_PROVIDERS) if wanted is True else list(wanted)
    unknown = [n for n in names if n not in SUPPORTED_PROVIDERS]
    if unknown:
        raise ValueError(
            f"unsupported provider(s) {unknown}; supported: {sorted(SUPPORTED_PROVIDERS)}"
        )
    done: list[BaseInstrumentor] = []
    for name in names:
        module, target = SUPPORTED_PROVIDERS[name]
        if importlib.util.find_spec(module) is None:
            continue
        try:
            mod_name, cls_name = target.split(":")
            inst = getattr(importlib.import_module(mod_name), cls_name)()
            conflict = get_dependency_conflicts(inst.instrumentation_dependencies())
            if conflict is not None:
                _log.warning(
                    "frictionlens: %s is not instrumented: %s is installed, %s is supported",
                    name,
                    conflict.found,
                    conflict.required,
                )
                continue
            inst.instrument(telemetry=telemetry, tracer_provider=tp, skip_dep_check=True)
        except Exception:  # an SDK we cannot wrap is left alone, never the app's failure
            health.count_internal_error(name)
            _log.warning("frictionlens: %s is not instrumented", name, exc_info=True)
            continue
        done.append(inst)
    return done
