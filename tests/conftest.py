"""Shared test setup: every test gets its own data dir and no OTLP endpoint by default."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.otlp"]

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    for var in list(os.environ):
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

    out = tmp_path_factory.mktemp("demo") / "out"
    proc = run_python(["-m", "frictionlens.cli", "demo", "--calls", "200", "--out", str(out)])
    return out, proc.stdout


def run_python(
    args: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` to its end, as a user runs it: without the caller's OTEL_* and
    FRICTIONLENS_* settings, with ``env`` on top. Fails the test on a non-zero exit."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FRICTIONLENS_"))}
    full.update(env or {})
    done = subprocess.run(
        [sys.executable, *args], env=full, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done


def free_port() -> int:
    """A loopback TCP port free right now, for servers that must be told their port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
