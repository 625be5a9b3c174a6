"""Which SDKs instrument() wraps, and gen_ai.provider.name for OpenAI-compatible servers."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frictionlens
from frictionlens import runtime
from frictionlens.instrumentation.openai import provider_for
from frictionlens.localserver import Reply
from tests.sdks import anthropic_client
from tests.test_anthropic import MSG, server  # noqa: F401 - fixture

#: the SDK instrumentation tests, run on the newest and the oldest SDK releases we support
pytestmark = pytest.mark.sdk


class FlushingExporter(InMemorySpanExporter):
    """Reads finished spans after the pipeline's worker thread has handed them on."""

    provider: TracerProvider | None = None

    def get_finished_spans(self):
        if self.provider is not None:
            self.provider.force_flush()
        return super().get_finished_spans()


@pytest.fixture
def exporter():
    return FlushingExporter()


def _install(exporter: FlushingExporter, **options):
    tp = exporter.provider = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    frictionlens.instrument(
        tracer_provider=tp, meter_provider=MeterProvider(), exporter="none", **options
    )


def _providers(exporter):
    return sorted(
        s.attributes["gen_ai.provider.name"]
        for s in exporter.get_finished_spans()
        if "gen_ai.provider.name" in (s.attributes or {})
    )


def _call_both(server):
    server.script(Reply(content="a"), Reply(content="b"))
    openai.OpenAI(base_url=server.openai_base_url, api_key="x").chat.completions.create(
        model="m", messages=MSG
    )
    anthropic_client(base_url=server.anthropic_base_url, api_key="x").messages.create(
        model="m", max_tokens=5, messages=MSG
    )


def _wrapped_sdks() -> list[str]:
    return sorted(type(i).__module__.rsplit(".", 1)[-1] for i in runtime.installed().instrumentors)


def test_instrument_wraps_every_importable_sdk(server, exporter):
    _install(exporter)
    importable = [
        name
        for name, (module, _) in runtime.SUPPORTED_PROVIDERS.items()
        if importlib.util.find_spec(module)
    ]
    assert {"openai", "anthropic"} <= set(importable)
    assert _wrapped_sdks() == sorted(importable)
    _call_both(server)
    assert _providers(exporter) == ["anthropic", "openai"]


def test_providers_option_narrows(server, exporter):
    _install(exporter, providers=["openai"])
    _call_both(server)
    assert _providers(exporter) == ["openai"]


def test_providers_false_installs_the_pipeline_only(server, exporter):
    _install(exporter, providers=False)
    assert runtime.installed().instrumentors == []
    _call_both(server)
    assert _providers(exporter) == []


def test_sdk_not_importable_is_skipped_silently(server, exporter, monkeypatch):
    monkeypatch.setitem(
        sys.modules, "anthropic", None
    )  # how Python marks a module as not importable
    monkeypatch.setitem(sys.modules, "litellm", None)
    _install(exporter)
    assert _wrapped_sdks() == ["openai"]


@pytest.mark.parametrize("named", [False, True], ids=["all-importable", "named"])
def test_unsupported_sdk_version_is_logged_and_left_alone(
    server, exporter, monkeypatch, caplog, named
):
    """An SDK release below the supported floor: one clear log line, no wrapper, no error."""
    from frictionlens.instrumentation.openai import OpenAIInstrumentor

    monkeypatch.setattr(
        OpenAIInstrumentor, "instrumentation_dependencies", lambda self: ("openai >= 999",)
    )
    with caplog.at_level("WARNING", logger="frictionlens.runtime"):
        _install(exporter, **({"providers": ["openai", "anthropic"]} if named else {}))
    assert "openai" not in _wrapped_sdks() and "anthropic" in _wrapped_sdks()
    lines = [r.getMessage() for r in caplog.records if "not instrumented" in r.getMessage()]
    assert lines == [
        f"frictionlens: openai is not instrumented: openai {openai.__version__} is installed, openai >= 999 is supported"
    ]
    _call_both(server)
    assert _providers(exporter) == ["anthropic"]


def test_declared_support_ranges_match_the_instrumentors():
    """pyproject.toml's SDK extras state the floors the instrumentors check at instrument()."""
    from pathlib import Path

    import tomllib

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
        "project"
    ]["optional-dependencies"]
    for name, (_, target) in runtime.SUPPORTED_PROVIDERS.items():
        module, cls = target.split(":")
        inst = getattr(importlib.import_module(module), cls)()
        declared = [req.replace(" ", "") for req in inst.instrumentation_dependencies()]
        assert extras[name] == declared, name


def test_unknown_provider_is_an_error(exporter):
    with pytest.raises(ValueError, match="unsupported provider"):
        _install(exporter, providers=["cohere-sdk"])


@pytest.mark.parametrize(
    ("host", "port", "provider"),
    [
        ("api.openai.com", 443, "openai"),
        ("api.groq.com", 443, "groq"),
        ("openrouter.ai", 443, "openrouter"),
        ("api.deepseek.com", 443, "deepseek"),
        ("my-res.openai.azure.com", 443, "azure.ai.openai"),
        ("localhost", 11434, "ollama"),
        ("127.0.0.1", 11434, "ollama"),
        ("127.0.0.1", 8000, "openai"),  # vLLM and other local servers: not told apart
        ("gpu-box.internal", 11434, "openai"),  # a remote port proves nothing
        (None, None, "openai"),
    ],
)
def test_provider_from_base_url(host, port, provider):
    assert provider_for(host, port) == provider


def test_openai_compatible_host_sets_provider(server, exporter):
    """A real call to ``api.groq.com`` (reached through the local server as an HTTP proxy)."""
    _install(exporter, providers=["openai"])
    server.script(Reply(content="fast answer"))
    client = openai.OpenAI(
        base_url="http://api.groq.com/v1",
        api_key="x",
        http_client=openai.DefaultHttpxClient(proxy=server.url),
    )
    assert (
        client.chat.completions.create(model="llama-3.3-70b", messages=MSG)
        .choices[0]
        .message.content
        == "fast answer"
    )
    (span,) = [
        s for s in exporter.get_finished_spans() if "gen_ai.provider.name" in (s.attributes or {})
    ]
    assert span.attributes["gen_ai.provider.name"] == "groq"
    assert span.attributes["server.address"] == "api.groq.com"
