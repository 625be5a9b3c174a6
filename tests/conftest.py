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


def free_port() -> int:
    """A loopback TCP port free right now, for servers that must be told their port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
