"""LIVE: real Prometheus and Alertmanager evaluate the generated rules on an instrumented app.

Prometheus scrapes the app's endpoint every second and routes alerts to Alertmanager, both
on loopback with their data in a temp dir. After a scripted degradation (the JSON route
starts answering with a preamble in code fences, users correct and rephrase) the drift and
friction alerts go from inactive to firing and reach Alertmanager; a healthy run of the same
app keeps every alert inactive. Drift watches the output features only: on a shared
machine latency moves with the host's load. Both runs go side by side: 60-90 s in all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from frictionlens.exporters import rules
from frictionlens.processors.drift.stage import (
    FEATURES,
    LATENCY,
    TIME_TO_FIRST_CHUNK,
    TOKENS_PER_SECOND,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        PROMETHEUS is None or ALERTMANAGER is None,
        reason="prometheus / prometheus-alertmanager absent (apt-get install prometheus prometheus-alertmanager)",
    ),
]

DRIFT, FRICTION = rules.KINDS["drift"].title, rules.KINDS["friction_rate"].title
#: short windows for a run of seconds; friction_rate counts every JSON call as a smooth one-turn conversation
CONFIG = {
    "alerts": {
        **{name: {"window": "20s", "for": "2s"} for name in rules.DEFAULT_ALERTS},
        "drift": {"window": "1m", "for": "0s"},
        "friction_rate": {"window": "20s", "for": "2s", "threshold": 0.02},
    }
}
#: calls the healthy run makes after the degradation began beside it, before its alerts are read
HEALTHY_CALLS_AFTER_WARMUP = 300
#: timing moves with this shared machine's load, not with the provider: not watched here
OUTPUT_FEATURES = [
    f for f in FEATURES if f not in (LATENCY, TIME_TO_FIRST_CHUNK, TOKENS_PER_SECOND)
]
T = TypeVar("T")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def _poll(
    what: str, probe: Callable[[], T | None], timeout_s: float, procs: list[subprocess.Popen]
) -> T:
    """Poll until ``probe`` returns a truthy value; fail with ``what`` at the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{p.args[0]} exited with {p.returncode}"
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Loop:
    """Prometheus + Alertmanager + the app, started in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        app_port, self.prom_port, am_port = free_port(), free_port(), free_port()
        self.prom = f"http://127.0.0.1:{self.prom_port}"
        self.am = f"http://127.0.0.1:{am_port}"
        (folder / "rules.yml").write_text(
            rules.prometheus_rules(rules.RulesConfig.from_mapping(CONFIG))
        )
        (folder / "prometheus.yml").write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": ["rules.yml"],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "app",
                            "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
                        }
                    ],
                }
            )
        )
        (folder / "alertmanager.yml").write_text(
            json.dumps(
                {
                    "route": {
                        "receiver": "null",
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [{"name": "null"}],
                }
            )
        )
        log = open(folder / "servers.log", "w")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.procs = [
            subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={folder / 'alertmanager.yml'}",
                    f"--storage.path={folder / 'am'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=log,
            ),
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.prom_port}",
                ],
                stdout=log,
                stderr=log,
            ),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FRICTIONLENS_"))}
        env.update(
            FRICTIONLENS_PROMETHEUS_PORT=str(app_port),
            FRICTIONLENS_PROMETHEUS_HOST="127.0.0.1",
            FRICTIONLENS_EXPORTER="none",
            FRICTIONLENS_CONVERSATION_TIMEOUT_S="1",
            FRICTIONLENS_DRIFT_ARL="1000000",  # no false drift alarm in a healthy run of ~1,500 calls
            FRICTIONLENS_DRIFT_FEATURES=",".join(OUTPUT_FEATURES),
            FRICTIONLENS_DATA_DIR=str(folder / "data"),
        )
        self.app = subprocess.Popen(
            [sys.executable, "-m", "tests.alerting_app", str(folder)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.procs.append(self.app)
        self.warm = threading.Event()
        threading.Thread(target=self._watch_app, daemon=True).start()

    def _watch_app(self) -> None:
        for line in self.app.stdout:  # type: ignore[union-attr]
            if line.strip() == "warm":
                self.warm.set()

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        self._log.close()

    # -- Prometheus HTTP API --------------------------------------------------------------------
    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prom}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        return _get(url)["data"]["result"]

    def rule_states(self) -> dict[str, str]:
        """Alerting rule -> inactive / pending / firing, once every rule has been evaluated."""
        groups = _get(f"{self.prom}/api/v1/rules?type=alert")["data"]["groups"]
        found = [r for g in groups for r in g["rules"]]
        if not found or any(r["lastEvaluation"].startswith("0001") for r in found):
            return {}
        return {r["name"]: r["state"] for r in found}

    def firing(self) -> set[str]:
        alerts = _get(f"{self.prom}/api/v1/alerts")["data"]["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

    def received_by_alertmanager(self) -> set[str]:
        return {a["labels"]["alertname"] for a in _get(f"{self.am}/api/v2/alerts")}

    def calls_seen(self) -> float:
        result = self.query(f"sum({rules.OUTPUT_LENGTH_COUNT})")
        return float(result[0]["value"][1]) if result else 0.0


def _ready(lp: Loop) -> None:
    _poll(
        "Alertmanager ready",
        lambda: urllib.request.urlopen(f"{lp.am}/-/ready", timeout=2).status == 200,
        30,
        lp.procs,
    )
    _poll(
        "Prometheus to scrape the app (up == 1)",
        lambda: any(r["value"][1] == "1" for r in lp.query('up{job="app"}')),
        40,
        lp.procs,
    )


@pytest.fixture
def loops(tmp_path) -> Iterator[tuple[Loop, Loop]]:
    """A healthy and a to-be-degraded run side by side, both warmed up, every alert inactive."""
    healthy, degraded = (tmp_path / "healthy"), (tmp_path / "degraded")
    started: list[Loop] = []
    try:
        for folder in (healthy, degraded):
            folder.mkdir()
            started.append(Loop(folder))
        for lp in started:
            _ready(lp)
            (lp.folder / "start").touch()
        for lp in started:
            _poll("the app's drift baseline (warm-up)", lp.warm.is_set, 60, lp.procs)
            states = _poll("every alerting rule evaluated", lp.rule_states, 20, lp.procs)
            assert set(states) == {
                rules.KINDS[a.name].title for a in rules.DEFAULT_ALERTS.values() if a.enabled
            }
            assert set(states.values()) == {"inactive"}, states
        yield started[0], started[1]
    finally:
        for lp in started:
            lp.stop()


def test_degradation_fires_drift_and_friction_alerts_and_a_healthy_run_stays_silent(loops):
    healthy, degraded = loops
    start = healthy.calls_seen()
    (degraded.folder / "degrade").touch()
    fired = _poll(
        "drift and friction alerts firing",
        lambda: {DRIFT, FRICTION} <= degraded.firing() and degraded.firing(),
        60,
        degraded.procs,
    )
    received = _poll(
        "Alertmanager to receive them",
        lambda: (
            {DRIFT, FRICTION} <= degraded.received_by_alertmanager()
            and degraded.received_by_alertmanager()
        ),
        20,
        degraded.procs,
    )
    assert {DRIFT, FRICTION} <= fired and {DRIFT, FRICTION} <= received

    def drifted() -> set[str]:
        firing = degraded.query(f'ALERTS{{alertname="{DRIFT}",alertstate="firing"}}')
        return {r["metric"]["feature"] for r in firing}

    # the provider's new model raises the alert; the format alarms close behind it join it
    # (one alert per change, with the features on its events), so the alert names the model
    assert _poll(
        "a drift alert on the provider change",
        lambda: drifted() & {"response_model", "system_fingerprint"},
        30,
        degraded.procs,
    )

    # the healthy run, over at least as many calls, raised nothing
    _poll(
        f"{HEALTHY_CALLS_AFTER_WARMUP} more healthy calls scraped",
        lambda: healthy.calls_seen() >= start + HEALTHY_CALLS_AFTER_WARMUP,
        60,
        healthy.procs,
    )
    states = _poll("every alerting rule evaluated", healthy.rule_states, 20, healthy.procs)
    assert set(states.values()) == {"inactive"}, (states, healthy.query("ALERTS"))
    assert healthy.received_by_alertmanager() == set()
    # its friction ratio is measured (conversations ended, all smooth): the silence is a reading, not a gap
    friction = next(
        a for a in rules.RulesConfig.from_mapping(CONFIG).alerts if a.name == "friction_rate"
    )
    ratio = _poll(
        "the friction ratio recorded",
        lambda: healthy.query(rules.record_name(friction)),
        30,
        healthy.procs,
    )
    assert float(ratio[0]["value"][1]) == 0.0
