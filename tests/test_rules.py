"""Alert rules: the generator's config, a real scrape's metric names, promtool check and test."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

import frictionlens
from frictionlens import runtime, semconv
from frictionlens.cli import main
from frictionlens.exporters import rules
from frictionlens.localserver import LocalLLMServer, Reply
from frictionlens.processors.friction import kinds as friction_kinds
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_RULES = ROOT / "examples" / "observability" / "prometheus" / "frictionlens.rules.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool absent (apt-get install prometheus)"
)

#: the alerts a default config generates (some are opt-in: enabled = false)
ENABLED = [a for a in rules.default_alerts().values() if a.enabled]
SCOPE = 'otel_scope_name="frictionlens",otel_scope_version="0.1.0"'
#: a friction kind that asks for an alert of its own (its entry in the kind table, nothing else)
TOY = friction_kinds.Kind(semconv.CATEGORY_STAGNATION, 0.2, alert=0.1)
_DURATION_COUNT = (
    'gen_ai_client_operation_duration_seconds_count{gen_ai_provider_name="openai",'
    f'gen_ai_request_model="m",gen_ai_operation_name="chat",{SCOPE}}}'
)


@pytest.fixture
def toy_kind():
    friction_kinds.add("toy", TOY)
    yield
    friction_kinds.remove("toy")


def short_windows() -> dict:
    """A config of every alert with short windows, so promtool's simulated series stay small."""
    return {
        "alerts": {
            name: {"window": "5m", "for": "2m", "enabled": True} for name in rules.default_alerts()
        }
    }


#: alert -> (input series firing it, its labels besides the fixed ones, its value; series of a healthy run)
CASES: dict[str, tuple[dict[str, str], dict[str, str], float, dict[str, str]]] = {
    "friction_rate": (
        {
            f'frictionlens_conversations_total{{outcome="recovered",review_needed="true",{SCOPE}}}': "0+6x20",
            f'frictionlens_conversations_total{{outcome="smooth",review_needed="false",{SCOPE}}}': "0+4x20",
        },
        {},
        0.6,
        {
            f'frictionlens_conversations_total{{outcome="recovered",review_needed="true",{SCOPE}}}': "0+1x20",
            f'frictionlens_conversations_total{{outcome="smooth",review_needed="false",{SCOPE}}}': "0+9x20",
        },
    ),
    "review_needed": (
        {
            f'frictionlens_conversations_total{{outcome="recovered",review_needed="true",{SCOPE}}}': "0+1x20"
        },
        {},
        60.0,
        {
            f'frictionlens_conversations_total{{outcome="recovered",review_needed="true",{SCOPE}}}': "0+0.1x20"
        },
    ),
    "drift": (
        # the stream's first alarm: the series appears at 1
        {
            f'frictionlens_drift_alerts_total{{stream="openai/m/r1",feature="json_invalid",{SCOPE}}}': "_ _ _ _ _ 1x15"
        },
        {"stream": "openai/m/r1", "feature": "json_invalid"},
        1.0,
        {
            f'frictionlens_drift_score{{stream="openai/m/r1",feature="json_invalid",{SCOPE}}}': "0.2x20",
            # timing alone (kind performance) is reported, not alerted by default
            f'frictionlens_drift_alerts_total{{stream="openai/m/r1",feature="latency",kind="performance",{SCOPE}}}': "_ _ _ _ _ 1x3 2x12",
        },
    ),
    "performance_drift": (
        {
            f'frictionlens_drift_alerts_total{{stream="openai/m/r1",feature="latency",kind="performance",{SCOPE}}}': "_ _ _ _ _ 1x15"
        },
        {"stream": "openai/m/r1", "feature": "latency"},
        1.0,
        {
            f'frictionlens_drift_alerts_total{{stream="openai/m/r1",feature="output_chars",kind="content",{SCOPE}}}': "_ _ _ _ _ 1x15"
        },
    ),
    "format_failure_rate": (
        {
            f'frictionlens_format_failures_total{{stream="s1",error="preamble",{SCOPE}}}': "0+1x20",
            f'frictionlens_output_length_count{{stream="s1",{SCOPE}}}': "0+10x20",
        },
        {"stream": "s1"},
        0.1,
        {
            f'frictionlens_format_failures_total{{stream="s1",error="preamble",{SCOPE}}}': "0+0.1x20",
            f'frictionlens_output_length_count{{stream="s1",{SCOPE}}}': "0+10x20",
        },
    ),
    "retry_rate": (
        {
            f'frictionlens_retries_total{{provider="openai",model="m",{SCOPE}}}': "0+2x20",
            'gen_ai_client_operation_duration_seconds_count{gen_ai_provider_name="openai",gen_ai_request_model="m",'
            f'gen_ai_operation_name="chat",{SCOPE}}}': "0+10x20",
        },
        {"provider": "openai", "model": "m"},
        0.2,
        {
            f'frictionlens_retries_total{{provider="openai",model="m",{SCOPE}}}': "0+0.5x20",
            'gen_ai_client_operation_duration_seconds_count{gen_ai_provider_name="openai",gen_ai_request_model="m",'
            f'gen_ai_operation_name="chat",{SCOPE}}}': "0+10x20",
        },
    ),
    "trajectory_efficiency": (
        {
            f'frictionlens_trajectory_efficiency_sum{{task="refund",outcome="success",{SCOPE}}}': "0+5x20",
            f'frictionlens_trajectory_efficiency_count{{task="refund",outcome="success",{SCOPE}}}': "0+10x20",
        },
        {"task": "refund"},
        0.5,
        {
            f'frictionlens_trajectory_efficiency_sum{{task="refund",outcome="success",{SCOPE}}}': "0+9x20",
            f'frictionlens_trajectory_efficiency_count{{task="refund",outcome="success",{SCOPE}}}': "0+10x20",
        },
    ),
    "brute_force_rate": (
        {
            f'frictionlens_trajectory_outcomes_total{{task="refund",outcome="success",brute_force="true",{SCOPE}}}': "0+1x20",
            f'frictionlens_trajectory_outcomes_total{{task="refund",outcome="success",brute_force="false",{SCOPE}}}': "0+3x20",
        },
        {"task": "refund"},
        0.25,
        {
            f'frictionlens_trajectory_outcomes_total{{task="refund",outcome="success",brute_force="false",{SCOPE}}}': "0+3x20"
        },
    ),
    "friction_toy": (
        {
            f'frictionlens_friction_events_total{{kind="toy",category="stagnation",provider="openai",model="m",{SCOPE}}}': "0+3x20",
            _DURATION_COUNT: "0+10x20",
        },
        {},
        0.3,
        {
            f'frictionlens_friction_events_total{{kind="toy",category="stagnation",provider="openai",model="m",{SCOPE}}}': "0+0.5x20",
            _DURATION_COUNT: "0+10x20",
        },
    ),
    "task_success": (  # no run ever succeeded: the success series does not exist, the ratio reads 0
        {
            f'frictionlens_trajectory_outcomes_total{{task="refund",outcome="failure",brute_force="false",{SCOPE}}}': "0+1x20"
        },
        {"task": "refund"},
        0.0,
        {
            f'frictionlens_trajectory_outcomes_total{{task="refund",outcome="success",brute_force="false",{SCOPE}}}': "0+9x20",
            f'frictionlens_trajectory_outcomes_total{{task="refund",outcome="failure",brute_force="false",{SCOPE}}}': "0+1x20",
        },
    ),
}


def _expand(template: str, labels: dict[str, str], value: float) -> str:
    """Prometheus' expansion of the two template forms the generator uses."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    return text.replace('{{ $value | printf "%.3g" }}', f"{value:.3g}")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


# -- config and generator -----------------------------------------------------------------------
def test_config_defaults_and_overrides(tmp_path):
    default = rules.RulesConfig.load()
    assert [a.name for a in default.alerts] == list(rules.DEFAULT_ALERTS)
    cfg = tmp_path / "alerts.toml"
    cfg.write_text(
        '[links]\nservice = "shop"\n[alerts.drift]\nwindow = "1h30m"\nseverity = "critical"\n'
        "[alerts.retry_rate]\nenabled = false\n"
    )
    loaded = rules.RulesConfig.load(cfg)
    drift = next(a for a in loaded.alerts if a.name == "drift")
    assert (drift.window_s, drift.severity, drift.for_) == (
        5400,
        "critical",
        rules.DEFAULT_ALERTS["drift"].for_,
    )
    assert loaded.service == "shop"
    doc = yaml.safe_load(rules.prometheus_rules(loaded))
    alerts = {r["alert"]: r for r in doc["groups"][0]["rules"] if "alert" in r}
    assert (
        "RetryRateHigh" not in alerts and alerts["OutputDrift"]["labels"]["severity"] == "critical"
    )
    assert "service=shop" in alerts["OutputDrift"]["annotations"]["trace_url"]
    for bad in (
        {"alerts": {"nope": {}}},
        {"alerts": {"drift": {"window": "soon"}}},
        {"alerts": {"drift": {"x": 1}}},
        {"honeycomb": {"frequency": 90}},
        {"other": {}},
    ):
        with pytest.raises(ValueError):
            rules.RulesConfig.from_mapping(bad)


def test_honeycomb_triggers_cover_every_alert(tmp_path, capsys):
    assert main(["rules", "--target", "honeycomb"]) == 0
    triggers = json.loads(capsys.readouterr().out)
    assert len(triggers) == len(ENABLED)
    for trigger, alert in zip(triggers, ENABLED):
        query = trigger["query"]
        assert len(query["calculations"]) == 1 and query["time_range"] == alert.window_s
        assert trigger["threshold"]["op"] == rules.KINDS[alert.name].op
        assert (
            trigger["threshold"]["value"] == alert.threshold
            and 1 <= trigger["threshold"]["exceeded_limit"] <= 5
        )
        assert trigger["frequency"] % 60 == 0
        for calc in query[
            "calculations"
        ]:  # an AVG reads a column or one of the query's calculated fields
            derived = {f["name"] for f in query.get("calculated_fields", [])}
            assert (
                calc["op"] == "COUNT"
                or calc["column"] in derived
                or calc["column"].startswith("frictionlens.")
            )
    # Honeycomb counts per window: 20 review-needed conversations an hour are 10 in 30 minutes
    half_hour = rules.RulesConfig.from_mapping(
        {"alerts": {"review_needed": {"window": "30m", "for": "10m"}}}
    )
    review = next(
        t for t in json.loads(rules.honeycomb_triggers(half_hour)) if "review" in t["name"]
    )
    assert (
        review["threshold"]["value"],
        review["query"]["time_range"],
        review["threshold"]["exceeded_limit"],
    ) == (10, 1800, 3)


def test_prometheus_and_drift_options():
    from frictionlens.config import Options

    env = {"OTEL_METRICS_EXPORTER": "otlp,prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0"}
    assert (
        Options.resolve(environ=env).prometheus_port,
        Options.resolve(environ=env).prometheus_host,
    ) == (9464, "0.0.0.0")
    env["FRICTIONLENS_PROMETHEUS_PORT"] = "9100"
    assert Options.resolve(environ=env).prometheus_port == 9100
    assert (
        Options.resolve(environ={"OTEL_EXPORTER_PROMETHEUS_PORT": "9100"}).prometheus_port is None
    )
    assert Options.resolve(
        environ={"FRICTIONLENS_DRIFT_FEATURES": "preamble, code_fence"}
    ).drift_features == ["preamble", "code_fence"]


def test_a_taken_prometheus_port_does_not_break_the_app():
    from frictionlens import health

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = health.internal_errors().get("prometheus", 0)
        frictionlens.instrument(
            exporter="none",
            providers=False,
            prometheus_host="127.0.0.1",
            prometheus_port=taken.getsockname()[1],
        )
        assert runtime.installed() is not None
        assert health.internal_errors()["prometheus"] == before + 1


# -- promtool ------------------------------------------------------------------------------------
@needs_promtool
def test_default_rules_pass_promtool_and_match_the_example(tmp_path):
    out = tmp_path / "frictionlens.rules.yml"
    assert main(["rules", "--target", "prometheus", "-o", str(out)]) == 0
    check = _promtool("check", "rules", str(out), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{2 * len(ENABLED)} rules found" in check.stdout
    assert EXAMPLE_RULES.read_text() == out.read_text(), (
        "regenerate: frictionlens rules --target prometheus -o "
        "examples/observability/prometheus/frictionlens.rules.yml"
    )


@needs_promtool
@pytest.mark.parametrize("name", list(CASES))
def test_promtool_unit_test_per_alert(tmp_path, name, toy_kind):
    """Input series that cross the threshold fire the alert after ``for``; a healthy run stays silent."""
    config = rules.RulesConfig.from_mapping(short_windows())
    (tmp_path / "rules.yml").write_text(rules.prometheus_rules(config))
    rule = next(
        r
        for g in yaml.safe_load((tmp_path / "rules.yml").read_text())["groups"]
        for r in g["rules"]
        if r.get("labels", {}).get("signal") == name
    )
    firing, labels, value, healthy = CASES[name]
    labels = {**labels, **rule["labels"]}
    annotations = {k: _expand(v, labels, value) for k, v in rule["annotations"].items()}
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in firing.items()],
                "alert_rule_test": [
                    {
                        "eval_time": "7m",
                        "alertname": rule["alert"],
                        "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
                    },
                    {
                        "eval_time": "2m",
                        "alertname": rule["alert"],
                        "exp_alerts": [],
                    },  # pending: not yet for 2m
                ],
            },
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in healthy.items()],
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": rule["alert"], "exp_alerts": []}
                ],
            },
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = _promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# -- a real scrape -------------------------------------------------------------------------------
def _series_in(expr: str) -> set[str]:
    names = set(re.findall(r"\b((?:frictionlens|gen_ai)_[a-z_]+)\b", expr))
    return {
        n
        for n in names
        if not n.startswith("gen_ai_provider") and not n.startswith("gen_ai_request")
    }


def test_rule_metric_names_match_a_real_scrape(monkeypatch):
    """Every series the rules read (drift alarms aside: the live loop fires those) is on the endpoint."""
    import openai

    from frictionlens.demo import _agent

    port = free_port()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(port))
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    with LocalLLMServer() as server:
        frictionlens.instrument(exporter="none", providers=["openai"], conversation_timeout_s=0.01)
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=2)
        server.script(
            Reply(status=500, error="busy", headers={"retry-after-ms": "1"}), Reply(content="ok")
        )
        with frictionlens.session("c1"):
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Where is my parcel?"}]
            )
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Where is my parcel?"}]
            )
        server.script(Reply(content='Sure! Here it is: {"a": 1}'))
        client.chat.completions.create(
            model="m",
            response_format={"type": "json_object"},
            messages=[{"role": "user", "content": "json please"}],
        )
        _agent(client, server, brute_force=True)
        time.sleep(0.05)
        runtime.installed().pipeline.tick()  # close the idle conversation now rather than on the 5 s ticker
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
    scraped = {
        line.split("{")[0].split(" ")[0]
        for line in body.splitlines()
        if line and not line.startswith("#")
    }
    wanted = set().union(*(_series_in(k.promql) for k in rules.KINDS.values())) - {
        rules.DRIFT_ALERTS
    }
    assert wanted <= scraped, sorted(wanted - scraped)
    assert 'brute_force="true"' in body and "otel_scope_name=" in body
    # explicit buckets: the output-length histogram exposes exactly its advised boundaries
    bounds = {m for m in re.findall(r'frictionlens_output_length_bucket\{[^}]*le="([^"]+)"', body)}
    assert {float(b) for b in bounds} == {float(b) for b in semconv.OUTPUT_LENGTH_BUCKETS} | {
        float("inf")
    }
