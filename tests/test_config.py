from pathlib import Path

import pytest

from frictionlens.config import Options


def test_defaults_and_env_and_kwargs_precedence():
    env = {
        "FRICTIONLENS_SAMPLE_RATE": "0.5",
        "FRICTIONLENS_PROVIDERS": "openai",
        "FRICTIONLENS_EXPORTER": "File",
    }
    o = Options.resolve({"sample_rate": 0.25}, environ=env)
    assert o.sample_rate == 0.25 and o.providers == ["openai"] and o.exporter == "file"
    assert Options.resolve(environ={}).providers is True
    assert Options.resolve(environ={"FRICTIONLENS_PROVIDERS": "none"}).providers is False


def test_capture_content_follows_the_genai_variable():
    assert Options.resolve(
        environ={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    ).capture_content
    assert not Options.resolve(environ={}).capture_content


def test_unknown_option_and_bad_rate_are_clear_errors():
    with pytest.raises(TypeError, match="unknown frictionlens option"):
        Options.resolve({"sampel_rate": 1})
    with pytest.raises(ValueError, match="sample_rate"):
        Options.resolve({"sample_rate": 2})


def test_salt_is_generated_once_and_kept(tmp_path: Path):
    o = Options.resolve({"data_dir": tmp_path}, environ={})
    first = o.salt_bytes()
    assert first and Options.resolve({"data_dir": tmp_path}, environ={}).salt_bytes() == first
    assert Options.resolve({"data_dir": tmp_path, "salt": "s"}, environ={}).salt_bytes() == b"s"


def test_learned_state_survives_a_restart(tmp_path):
    import json

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    import frictionlens
    from frictionlens import runtime

    frictionlens.instrument(
        data_dir=tmp_path,
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(),
        providers=False,
    )
    frictionlens.uninstrument()
    saved = json.loads((tmp_path / "state.json").read_text())
    assert {"drift", "trajectory"} <= set(saved["sections"])
    (tmp_path / "state.json").write_text("{corrupt")
    frictionlens.instrument(
        data_dir=tmp_path,
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(),
        providers=False,
    )
    assert runtime.installed() is not None  # a corrupt file is a warning, never a crash
