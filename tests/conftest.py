"""Shared test setup: every test gets its own data dir and no OTLP endpoint by default."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest_plugins = ["tests.otlp"]

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    for var in list(__import__("os").environ):
        if var.startswith(("OTEL_", "FRICTIONLENS_")):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FRICTIONLENS_DATA_DIR", str(tmp_path / "data"))
    yield
    from frictionlens import runtime

    runtime.uninstall()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("the shared corpus folder (../shared beside the repo) is absent")
    return SHARED


@pytest.fixture(scope="session")
def demo_cli_run(tmp_path_factory) -> tuple[Path, str]:
    """One ``frictionlens demo`` run through the CLI, shared by the report tests: (out dir, stdout).

    Small (``--calls 200``) but past the drift warm-up, so the alert, the provider change and
    every chart exist. Run without the caller's OTEL_* / FRICTIONLENS_* settings.
    """
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo") / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FRICTIONLENS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "frictionlens.cli", "demo", "--calls", "200", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def free_port() -> int:
    """A loopback TCP port free right now, for servers that must be told their port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
