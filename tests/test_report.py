"""``frictionlens report``: --since, the sections' numbers, and the HTML without a browser."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

import frictionlens
from frictionlens import cli
from frictionlens.exporters import report, report_html
from frictionlens.exporters.filestore import METRICS_FILE
from frictionlens.localserver import LocalLLMServer

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
IMG = re.compile(r'<img[^>]*src="data:image/png;base64,([^"]+)"')


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("1d", NOW - timedelta(days=1)),
        ("1.5w", NOW - timedelta(weeks=1.5)),
        (" 90s ", NOW - timedelta(seconds=90)),
        ("2026-11-26T10:15:00Z", datetime(2026, 11, 26, 10, 15, tzinfo=timezone.utc)),
        (
            "2026-11-26T10:15:00.250+02:00",
            datetime(2026, 11, 26, 8, 15, 0, 250_000, tzinfo=timezone.utc),
        ),
        ("2026-11-26 10:15", datetime(2026, 11, 26, 10, 15, tzinfo=timezone.utc)),  # no offset: UTC
        ("2026-11-26", datetime(2026, 11, 26, tzinfo=timezone.utc)),
    ],
)
def test_since_accepts_iso_times_and_durations(text, expected):
    assert report.parse_since(text, now=NOW) == _ns(expected)


@pytest.mark.parametrize("text", ["yesterday", "30", "5y", "-2h", "2026-13-01", ""])
def test_since_rejects_anything_else(text):
    with pytest.raises(ValueError, match="ISO-8601"):
        report.parse_since(text, now=NOW)


def test_since_keeps_only_spans_at_or_after_it(tmp_path):
    """Real spans through the real SDK into the real store; the filter splits them at the cut."""
    import openai

    store = tmp_path / "store"
    with LocalLLMServer() as server:
        frictionlens.instrument(
            data_dir=store, exporter="file", sample_rate=1.0, providers=["openai"]
        )
        try:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="k")

            def ask(n: int) -> None:
                for i in range(n):
                    client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": f"question {i}"}]
                    )

            ask(3)
            time.sleep(0.01)
            cut = time.time_ns()
            ask(2)
        finally:
            frictionlens.uninstrument()
    assert report.load(store, metrics=False).calls == 5
    assert report.load(store, since_ns=cut).calls == 2
    assert report.load(store, since_ns=time.time_ns()).calls == 0
    start_of_first = min(r["time_unix_nano"] for r in report.load(store).call_log)
    assert (
        report.load(store, since_ns=start_of_first).calls == 5
    )  # "at or after": the boundary span stays


@pytest.fixture(scope="module")
def demo_report(demo_cli_run) -> report.Report:
    return report.load(demo_cli_run[0])


def test_since_filters_metric_points(demo_cli_run, demo_report):
    times = sorted({p["time_unix_nano"] for p in demo_report.drift_scores})
    assert len(times) >= 3  # the demo exports metrics often enough for a timeline
    cut = times[len(times) // 2]
    # the metrics file alone: a file holding only metric lines reads as a store without spans
    later = report.load(demo_cli_run[0] / METRICS_FILE, since_ns=cut)
    assert later.calls == 0
    assert later.drift_scores and min(p["time_unix_nano"] for p in later.drift_scores) == cut
    assert len(later.drift_scores) < len(demo_report.drift_scores)


def test_cli_since(demo_cli_run, capsys):
    out = str(demo_cli_run[0])
    assert cli.main(["report", out, "--json", "--since", "2999-01-01T00:00:00Z"]) == 0
    assert json.loads(capsys.readouterr().out)["calls"] == 0
    assert cli.main(["report", out, "--since", "last tuesday"]) == 2
    assert "expected an ISO-8601 time" in capsys.readouterr().err


def test_drift_rows_carry_before_and_after_at_the_provider_change(demo_report):
    """The demo's JSON route changes model and fingerprint and starts wrapping its JSON."""
    [change] = demo_report.provider_changes
    assert change["changed"]["response_model"] == {
        "before": "gpt-demo",
        "after": "gpt-demo-2026-11",
    }
    alerts = {d["feature"]: d for d in demo_report.drift if d["cause"] == "provider_change"}
    assert all(
        d["stream"] == change["stream"] and d["time_unix_nano"] >= change["time_unix_nano"]
        for d in alerts.values()
    )
    assert (alerts["format_invalid"]["before"], alerts["format_invalid"]["after"]) == (0, 1)
    assert alerts["output_chars"]["after"] > 1.5 * alerts["output_chars"]["before"]
    assert (
        alerts["system_fingerprint"]["before"] == "fp_2026a"
        and alerts["system_fingerprint"]["after"] == "fp_2026b"
    )


def test_friction_rates_and_tail(demo_report):
    rates = {r["stream"]: r for r in demo_report.friction_rates}
    assert sum(r["calls"] for r in rates.values()) == demo_report.calls
    kinds_counted = sum(round(v * r["calls"]) for r in rates.values() for v in r["kinds"].values())
    assert kinds_counted == sum(demo_report.friction.values())
    tail = demo_report.tail
    assert len(tail["conversations"]) == -(-demo_report.conversations * 5 // 100)
    top = max(r["score"] for r in demo_report.review)
    assert (
        tail["conversations"][0]["score"] == top
        and tail["tail_mean_score"] > tail["overall_mean_score"]
    )
    assert tail["worst_streams"][0]["friction_rate"] == max(r["rate"] for r in rates.values())


def test_json_document_leaves_the_chart_series_out(demo_report):
    doc = json.loads(demo_report.to_json())
    assert {"review", "friction_rates", "drift", "provider_changes", "tasks", "tail"} <= set(doc)
    assert "call_log" not in doc and "drift_scores" not in doc


def decoded_png(b64: str):
    """An embedded chart's pixels (shared with the browser test)."""
    from matplotlib import image

    return image.imread(io.BytesIO(base64.b64decode(b64)), format="png")


def test_html_has_every_section_and_four_charts(demo_report):
    page = report_html.render_html(demo_report)
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == list(report.SECTIONS)
    images = IMG.findall(page)
    assert len(images) == 4
    for b64 in images:
        pixels = decoded_png(b64)
        assert pixels.shape[0] > 100 and pixels[..., :3].std() > 0.01  # drawn, not blank
    assert "http://" not in page and "https://" not in page  # self-contained
    for r in demo_report.review:
        assert r["trace_id"] in page


def test_html_of_an_empty_store_has_the_sections_and_no_charts(tmp_path):
    page = report_html.render_html(report.load(tmp_path))
    assert re.findall(r"<h2>(.*?)</h2>", page) == list(report.SECTIONS)
    assert not IMG.findall(page)


def test_missing_matplotlib_says_what_to_install(demo_report, monkeypatch, capsys, tmp_path):
    for mod in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(
        report_html.MissingDependency, match=r"pip install 'frictionlens\[report\]'"
    ):
        report_html.render_html(demo_report)
    (tmp_path / "traces.jsonl").write_text("")
    assert cli.main(["report", str(tmp_path), "--html", str(tmp_path / "r.html")]) == 2
    assert "pip install 'frictionlens[report]'" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["dir", "file", "default"])
def test_report_without_a_store_says_where_it_looked(where, tmp_path, capsys, monkeypatch):
    """A first run with nothing recorded yet: one line saying where it looked and what to do."""
    monkeypatch.chdir(tmp_path)
    args = {"dir": [str(tmp_path)], "file": ["run.jsonl"], "default": []}[where]
    assert cli.main(["report", *args]) == 1
    out = capsys.readouterr()
    looked = {"dir": f"{tmp_path}/traces.jsonl", "file": "run.jsonl", "default": "traces.jsonl"}
    assert out.out == "" and looked[where] in out.err and "frictionlens demo" in out.err
    assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err


def test_demo_without_the_openai_sdk_says_what_to_install(tmp_path, capsys, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "openai" else real_find_spec(name, *a),
    )
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'frictionlens[demo,report]'" in err and len(err.strip().splitlines()) == 1
