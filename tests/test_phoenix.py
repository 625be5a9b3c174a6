"""Our spans in a real trace viewer: Arize Phoenix receives an instrumented app's OTLP.

Phoenix (``arize-phoenix``, large) lives in its own virtualenv; ``.ci/setup`` creates it
where ``PHOENIX_PYTHON`` looks, unless ``FRICTIONLENS_PHOENIX_PYTHON`` names another. The chat example talks to the local LLM server as a
user who corrects the first answer, so its conversation is flagged for review. The spans are
read back through Phoenix's REST API, and headless Chromium renders the flagged trace in
Phoenix's UI; the screenshot is kept under ``FRICTIONLENS_ARTIFACTS``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from frictionlens import semconv as sc
from frictionlens.localserver import LocalLLMServer
from tests.test_export_end_to_end import run_app
from tests.test_report_browser import QUIET_FLAGS

# read at import: the autouse fixture clears FRICTIONLENS_* before each test
PHOENIX_PYTHON = os.environ.get(
    "FRICTIONLENS_PHOENIX_PYTHON",
    str(Path.home() / ".cache" / "frictionlens" / "phoenix-venv" / "bin" / "python"),
)
ARTIFACTS = os.environ.get("FRICTIONLENS_ARTIFACTS", "")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROJECT = "frictionlens-ci"
TURNS = ["How do I activate my new card?", "No, I meant my credit card, not the debit card."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def _wait(
    what: str,
    timeout: float,
    probe: Any,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with the server log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            result = probe()
        except (urllib.error.URLError, OSError):
            result = None
        if result:
            return result
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"{what} not within {timeout}s\n{tail}")


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``phoenix serve`` on free loopback ports with a fresh working dir; yields its base URL."""
    if not PHOENIX_PYTHON or not Path(PHOENIX_PYTHON).is_file():
        pytest.skip(
            f"no Phoenix interpreter at {PHOENIX_PYTHON}: arize-phoenix needs its own venv (.ci/setup makes it)"
        )
    workdir = tmp_path_factory.mktemp("phoenix")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(_free_port()),
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
    )
    log = workdir / "phoenix.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PHOENIX_PYTHON, "-m", "phoenix.server.main", "serve"],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(
            "Phoenix readiness",
            180,
            lambda: urllib.request.urlopen(f"{url}/readyz", timeout=5).status == 200,
            proc,
            log,
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def flagged(phoenix: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the chat example (a user who corrects the answer) into Phoenix; its spans as Phoenix returns them."""
    cwd = tmp_path_factory.mktemp("app")
    with LocalLLMServer() as llm:
        run_app(
            "chat_app.py",
            TURNS,
            {
                "OPENAI_BASE_URL": llm.openai_base_url,
                "OPENAI_API_KEY": "local",
                "OPENAI_MODEL": "gpt-4o-mini",
                "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_SERVICE_NAME": "chat-app",
                "OTEL_RESOURCE_ATTRIBUTES": f"{sc.OPENINFERENCE_PROJECT_NAME}={PROJECT}",
                "FRICTIONLENS_DATA_DIR": str(cwd / "data"),
            },
            cwd,
        )

    def spans() -> list[dict[str, Any]] | None:
        got = _get(f"{phoenix}/v1/projects/{PROJECT}/spans?limit=100")["data"]
        return got if any(s["name"] == sc.CONVERSATION_SPAN for s in got) else None

    found = _wait("the conversation summary span in Phoenix", 30, spans)
    project = next(p for p in _get(f"{phoenix}/v1/projects")["data"] if p["name"] == PROJECT)
    return {"url": phoenix, "project_id": project["id"], "spans": found}


def test_phoenix_keeps_our_attributes(flagged: dict[str, Any]) -> None:
    spans = flagged["spans"]
    calls = sorted(
        (s for s in spans if s["name"] == "chat gpt-4o-mini"), key=lambda s: s["start_time"]
    )
    assert len(calls) == 2
    for call in calls:
        a = call["attributes"]
        assert a[sc.GEN_AI_OPERATION_NAME] == sc.OP_CHAT and a[sc.GEN_AI_PROVIDER_NAME] == "openai"
        assert a[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini" and a[sc.GEN_AI_RESPONSE_ID].startswith(
            "chatcmpl-"
        )
        assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0 and a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
        assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
        assert (
            a[sc.OUTPUT_CHARS] > 0 and a[sc.OUTPUT_FORMAT_VALID] is True and a[sc.RETRY_COUNT] == 0
        )
        assert sc.GEN_AI_CONVERSATION_ID not in a
    first, second = (c["attributes"] for c in calls)
    assert first[sc.CONVERSATION_ID] == second[sc.CONVERSATION_ID]
    assert [first[sc.CONVERSATION_TURN], second[sc.CONVERSATION_TURN]] == [1, 2]
    assert first[sc.REVIEW_NEEDED] is False and sc.FRICTION_KIND not in first
    assert second[sc.FRICTION_KIND] == sc.FRICTION_CORRECTION
    assert second[sc.FRICTION_CATEGORY] == sc.CATEGORY_MISALIGNMENT
    assert 0 < second[sc.FRICTION_SCORE] <= 1 and second[sc.REVIEW_NEEDED] is True
    evaluations = [e for e in calls[1]["events"] if e["name"] == sc.GEN_AI_EVALUATION_RESULT]
    assert (
        evaluations
        and evaluations[0]["attributes"][sc.GEN_AI_EVALUATION_SCORE_LABEL] == sc.FRICTION_CORRECTION
    )

    (summary,) = [s for s in spans if s["name"] == sc.CONVERSATION_SPAN]
    s = summary["attributes"]
    assert s[sc.CONVERSATION_ID] == second[sc.CONVERSATION_ID] and s[sc.REVIEW_NEEDED] is True
    assert (
        s[sc.CONVERSATION_TURNS] == 2
        and s[sc.CONVERSATION_FRICTION_PREFIX + sc.FRICTION_CORRECTION] == 1
    )
    assert s[sc.CONVERSATION_END_REASON] == sc.CONVERSATION_END_SHUTDOWN


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_flagged_trace_renders_in_the_phoenix_ui(flagged: dict[str, Any], tmp_path: Path) -> None:
    call = next(s for s in flagged["spans"] if s["attributes"].get(sc.FRICTION_KIND))
    trace_id = call["context"]["trace_id"]
    page = f"{flagged['url']}/projects/{flagged['project_id']}/traces/{trace_id}?selectedSpanNodeId={call['id']}"
    out = Path(ARTIFACTS) if ARTIFACTS else tmp_path / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    png = out / "phoenix-trace.png"
    png.unlink(missing_ok=True)
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            *QUIET_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=8000",
            "--window-size=1600,1000",
            f"--screenshot={png}",
            "--dump-dom",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # the rendered trace, not a spinner: its id, the flagged call and the conversation summary
    assert trace_id in dom and "chat gpt-4o-mini" in dom and sc.CONVERSATION_SPAN in dom
    with Image.open(png) as image:
        assert image.size == (1600, 1000)
        colours = image.convert("RGB").getcolors(1 << 24) or []
    assert len(colours) > 100, "the screenshot is (nearly) blank"
