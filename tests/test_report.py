"""``frictionlens report``: --since, the sections' numbers, and the HTML without a browser."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import random
import re
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

import frictionlens
from frictionlens import cli
from frictionlens import semconv as sc
from frictionlens.exporters import report, report_html
from frictionlens.exporters.filestore import METRICS_FILE, FileMetricExporter
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


def test_since_filters_metric_points(tmp_path):
    """Drift scores written by the store's metric exporter at three collections: ``since``
    keeps the points taken at or after it, and a file of metric lines alone reads as a store
    without spans."""
    reader = PeriodicExportingMetricReader(
        FileMetricExporter(tmp_path), export_interval_millis=3_600_000
    )
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    gauge = provider.get_meter("t").create_gauge(sc.METRIC_DRIFT_SCORE)
    for value in (0.1, 0.2, 0.3):
        gauge.set(value, {sc.METRIC_ATTR_STREAM: "s", sc.METRIC_ATTR_FEATURE: "output_chars"})
        reader.force_flush()
    every = report.load(tmp_path)
    times = sorted(p["time_unix_nano"] for p in every.drift_scores)
    assert [p["value"] for p in every.drift_scores] == [0.1, 0.2, 0.3] and len(set(times)) == 3
    later = report.load(tmp_path / METRICS_FILE, since_ns=times[1])
    assert later.calls == 0
    assert [p["value"] for p in later.drift_scores] == [0.2, 0.3]


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
    assert kinds_counted == sum(len(r["friction"]) for r in demo_report.call_log)
    assert kinds_counted <= sum(demo_report.friction.values())  # also feedback and summaries
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


# -- a sampled store -------------------------------------------------------------------------
def _span(name: str, trace_id: int, th: str | None, **attributes) -> dict:
    return {
        "name": name,
        "trace_id": format(trace_id, "032x"),
        "span_id": format(trace_id & ((1 << 64) - 1), "016x"),
        "trace_state": "" if th is None else f"ot=th:{th}",
        "attributes": attributes,
        "events": [],
        "start_time_unix_nano": trace_id,
        "end_time_unix_nano": trace_id + 1,
    }


def _friction_event(kind: str) -> dict:
    return {
        "name": "gen_ai.evaluation.result",
        "attributes": {
            "gen_ai.evaluation.name": "frictionlens.friction",
            "gen_ai.evaluation.score.label": kind,
        },
        "time_unix_nano": 0,
    }


def sampled_store(conversations: int, with_friction: int, rate: float, seed: int) -> list[dict]:
    """Two-turn conversations, the first ``with_friction`` corrected at turn 2 (flagged: kept
    whole at th:0); the others kept by their trace's randomness, as SignalSampler keeps them;
    every conversation's summary kept."""
    from frictionlens.exporters import sampling

    rng = random.Random(seed)
    threshold = sampling.threshold(rate)
    spans = []
    for n in range(conversations):
        flagged = n < with_friction
        for turn in (1, 2):
            trace_id = rng.getrandbits(128)
            if not flagged and trace_id & ((1 << 56) - 1) < threshold:
                continue
            span = _span(
                "chat m",
                trace_id,
                "0" if flagged else sampling.encode_threshold(threshold),
                **{
                    "gen_ai.operation.name": "chat",
                    "frictionlens.drift.stream": "openai/m/default",
                    "frictionlens.conversation.id": f"c{n}",
                },
            )
            if flagged and turn == 2:
                span["events"].append(_friction_event("correction"))
            spans.append(span)
        summary = {
            "frictionlens.conversation.id": f"c{n}",
            "frictionlens.conversation.calls": 2,
            "frictionlens.friction.score": 0.6 if flagged else 0.0,
            "frictionlens.review.needed": flagged,
        }
        spans.append(_span("frictionlens.conversation", rng.getrandbits(128), "0", **summary))
    return spans


def _point(name: str, t: int, value: float, start: int = 1, **attributes) -> dict:
    return {
        "name": name,
        "type": "sum",
        "attributes": attributes,
        "resource": {"service.name": "app"},
        "start_time_unix_nano": start,
        "time_unix_nano": t,
        "value": value,
        "temporality": "cumulative",
    }


def test_metric_totals_add_processes_and_subtract_what_came_before_since():
    points = [
        _point("c", 10, 3, kind="a"),
        _point("c", 20, 5, kind="a"),  # cumulative: 5 so far
        _point("c", 30, 9, kind="a"),
        _point("c", 25, 4, start=22, kind="a"),  # another process
        _point("c", 30, 2, kind="b"),
        {**_point("d", 30, 7, kind="a"), "temporality": "delta"},
        {**_point("d", 40, 1, kind="a"), "temporality": "delta"},
    ]
    assert report.metric_total(points, ["c"], by="kind") == {"a": 13, "b": 2}
    assert report.metric_total(points, ["c"], since_ns=21, by="kind") == {"a": 8, "b": 2}
    assert report.metric_total(points, ["d"], since_ns=35) == {"*": 1}
    assert report.metric_total(points, ["c"], where=lambda a: a["kind"] == "b") == {"*": 2}
    assert report.metric_total(points, ["missing"]) is None


def test_a_sampled_store_is_counted_from_the_probabilities_on_its_spans():
    """1,000 conversations (2,000 calls), 100 flagged, the rest sampled at 10%."""
    spans = sampled_store(1000, 100, 0.1, seed=4)
    calls = [s for s in spans if s["name"] == "chat m"]
    assert len(calls) < 500
    # the spans alone, without the summaries: each counts 1/probability times
    alone = report.build([s for s in spans if s["name"] == "chat m"])
    assert abs(alone.calls / 2000 - 1) < 0.2  # standard error 6%
    assert alone.sampling["sample_rates"] == [0.1] and "calls" not in alone.sampling["exact"]
    # with the summaries (always kept): the calls of closed conversations are known exactly
    rep = report.build(spans)
    assert (rep.calls, rep.conversations, len(rep.review)) == (2000, 1000, 100)
    assert rep.friction_rate == 0.05 and rep.friction == {"correction": 100}
    assert rep.friction_rates[0]["calls"] == 2000 and rep.friction_rates[0]["rate"] == 0.05
    # with the metrics, the call count and the friction events come from them
    points = [
        _point("gen_ai.client.operation.duration", 5, 0, **{"gen_ai.operation.name": "chat"})
        | {"type": "histogram", "count": 2000},
        _point("frictionlens.friction.events", 5, 100, kind="correction"),
    ]
    exact = report.build(spans[: len(spans) // 2], points, series=False)
    assert exact.calls == 2000 and {"calls", "friction"} <= set(exact.sampling["exact"])
    assert "about 2000 LLM calls" in report.render(exact)
    assert "sampling rate 0.1" in report.render(exact)
    assert "Estimates from a sampled store" in report_html.render_html(exact)
    # sampled at rate 0: only what was flagged, at probability 1; still said to be sampled
    flagged = report.build([s for s in spans if s["trace_state"] == "ot=th:0"])
    assert flagged.sampling["sample_rates"] == [] and "sampling rate 0 " in report.render(flagged)


def test_a_complete_store_says_nothing_about_sampling():
    spans = [s | {"trace_state": ""} for s in sampled_store(20, 5, 1.0, seed=1)]
    rep = report.build(spans)
    assert rep.sampling == {} and rep.calls == 40 and rep.friction_rate == 0.125
    assert "Estimated" not in report.render(rep) and "about" not in report.render(rep)
