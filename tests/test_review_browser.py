"""The human review loop end to end, as a reviewer does it: ``frictionlens review`` on a store
from a real instrumented run, driven in headless Chromium (Debian's, through Playwright; never
a downloaded browser). Verdicts on flagged and unflagged conversations land in the store and
at a real OTLP receiver as ``frictionlens.review`` spans, and ``frictionlens report`` measures
precision and recall from exactly them.

The review page's screenshot is kept in ``$FRICTIONLENS_ARTIFACTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask_wtf", reason="the review extra is not installed")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

import openai  # noqa: E402

import frictionlens  # noqa: E402
from frictionlens import demo  # noqa: E402
from frictionlens import semconv as sc  # noqa: E402
from frictionlens.collector.decode import span_dicts  # noqa: E402
from frictionlens.exporters.filestore import TRACES_FILE, read_traces  # noqa: E402
from frictionlens.exporters.review_quality import SECTION, wilson  # noqa: E402
from frictionlens.localserver import LocalLLMServer  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.test_report_browser import QUIET_FLAGS  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# read at import: the autouse fixture clears FRICTIONLENS_* variables before each test
ARTIFACTS = os.environ.get("FRICTIONLENS_ARTIFACTS")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)
SAMPLE = "0.01"
JAEGER = "http://localhost:16686/trace/{trace_id}"
#: every text the demo's users and provider say: none may reach a page with capture off
DEMO_TEXTS = [
    *demo.QUESTIONS,
    *demo.FOLLOW_UPS,
    *demo.REPHRASES.values(),
    demo.JSON_SYSTEM,
    demo.CHAT_SYSTEM,
    "Short answer on",
    "No, I meant",
    "Forget it",
]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FRICTIONLENS_"))}
    return {**env, **(extra or {})}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    """``frictionlens demo --calls 600``: 30 simulated users, the JSON route, an agent."""
    out = tmp_path_factory.mktemp("review-demo") / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "frictionlens.cli", "demo", "--calls", "600", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def store(demo_store, tmp_path) -> Path:
    out = tmp_path / "store"
    shutil.copytree(demo_store, out)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=list(QUIET_FLAGS))
        yield b
        b.close()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    out = Path(ARTIFACTS) if ARTIFACTS else tmp_path / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextmanager
def review_server(
    store: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``frictionlens review STORE`` in a subprocess, as a user starts it; SIGTERM at the end."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "frictionlens.cli",
            "review",
            str(store),
            "--port",
            str(port),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
    )
    try:
        first = proc.stdout.readline()
        assert f"on http://127.0.0.1:{port}/" in first, first + (
            proc.stderr.read() if proc.poll() is not None else ""
        )
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _spans(path: Path) -> list[dict[str, Any]]:
    return [s for req in read_traces(path) for s in span_dicts(req)]


def _needed(flagged: bool, first: bool) -> str:
    """The test reviewer's answer: the first flagged conversation did not need review, the
    first unflagged one did (a miss), all others as flagged."""
    return "yes" if flagged != first else "no"


def _judge(flagged: bool, first: bool, kind: str) -> str:
    """The first flagged conversation's findings are false alarms; elsewhere loops are false
    alarms, closed streams are give-ups, everything else is confirmed."""
    if flagged and first or kind == sc.FRICTION_LOOP:
        return sc.FINDING_FALSE_ALARM
    if kind == sc.FRICTION_STREAM_ABANDON:
        return "other:" + sc.FRICTION_GIVE_UP
    return sc.FINDING_CONFIRMED


def _text(page: Any) -> str:
    return " ".join(page.inner_text("body").split())


def test_a_reviewer_goes_through_the_queue_and_the_report_measures_the_signals(
    store, browser, otlp_receiver, artifacts
):
    summaries = {s["span_id"]: s for s in _spans(store) if s["name"] == sc.CONVERSATION_SPAN}
    n_flagged_store = sum(1 for s in summaries.values() if s["attributes"][sc.REVIEW_NEEDED])
    n_unflagged_store = len(summaries) - n_flagged_store
    given: dict[str, tuple[str, dict[str, str]]] = {}  # item key -> needed, finding verdicts
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    with review_server(
        store,
        "--sample",
        SAMPLE,
        "--trace-url",
        JAEGER,
        env=otlp_receiver.env("http/protobuf"),
    ) as (base, proc):
        page.goto(base + "/")
        page.fill("input[name=reviewer]", "ann")
        page.click("text=Use this name")
        assert "reviewing as ann" in page.inner_text("header")
        total = int(page.inner_text("body").split(" conversations from ")[0].split()[-1])
        page.click("text=Review the next one")
        seen = {True: 0, False: 0}
        while page.url != base + "/":
            key = page.url.rsplit("/", 1)[1]
            summary = summaries[key]
            flagged = summary["attributes"][sc.REVIEW_NEEDED]
            cid = summary["attributes"][sc.CONVERSATION_ID]
            html = page.content()
            # blind: nothing says whether or why it was flagged
            assert page.locator(".finding").count() == 0
            assert cid not in html and "random sample" not in html and "score" not in html
            assert "Content capture was off" in html
            assert not [t for t in DEMO_TEXTS if t in html]
            first = seen[flagged] == 0
            seen[flagged] += 1
            needed = _needed(flagged, first)
            page.check(f"input[name=needed][value={needed}]")
            if not flagged and first:
                page.fill("textarea[name=note]", "the user had to ask twice")
            # the verdict posts and redirects to this same URL: wait for the new page, not the URL
            with page.expect_navigation():
                page.click("button[value=verdict]")
            # revealed: the flag, the findings, the trace link
            assert page.url == f"{base}/c/{key}"
            html = page.content()
            assert ("frictionlens flagged this conversation" in _text(page)) is flagged
            assert ("in the random sample of unflagged" in _text(page)) is not flagged
            assert f'href="http://localhost:16686/trace/{summary["trace_id"]}"' in html
            assert not [t for t in DEMO_TEXTS if t in html]
            kinds = [
                page.inner_text(f"label[for=f{i}]") for i in range(page.locator("select").count())
            ]
            verdicts = {k: _judge(flagged, first, k) for k in kinds}
            assert page.locator(".finding").count() >= len(kinds)
            for i, kind in enumerate(kinds):
                page.select_option(f"select[name=f{i}]", verdicts[kind])
            given[key] = (needed, verdicts)
            if flagged and first:
                page.screenshot(path=str(artifacts / "review.png"), full_page=True)
            page.click("button[value=findings]")
        assert len(given) == total and seen[True] == n_flagged_store and seen[False] >= 2
        # the last submission's redirect may still be loading: open the queue afresh
        page.wait_for_load_state()
        page.goto(base + "/")
        assert f"You are done with {total} of {total}" in _text(page)
        # a flagged item again: the verdicts given are what the form now holds
        key = next(k for k, (_, v) in given.items() if v)
        page.goto(f"{base}/c/{key}")
        _, verdicts = given[key]
        for i, choice in enumerate(verdicts.values()):
            assert page.locator(f"select[name=f{i}]").input_value() == choice
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "frictionlens review stopped" in proc.stdout.read()
    page.close()

    # the store: one span per submission, linked to the conversation's summary span
    reviews = [s for s in _spans(store) if s["name"] == sc.REVIEW_SPAN]
    judged = {k for k, (_, v) in given.items() if v}
    assert len(reviews) == len(given) + len(judged)
    for s in reviews:
        a, (link,) = s["attributes"], s["links"]
        key = link["span_id"]
        assert link["trace_id"] == summaries[key]["trace_id"]
        assert a[sc.REVIEW_REVIEWER] == "ann"
        assert a[sc.REVIEW_CONVERSATION_ID] == summaries[key]["attributes"][sc.CONVERSATION_ID]
        flagged = summaries[key]["attributes"][sc.REVIEW_NEEDED]
        assert a[sc.REVIEW_SOURCE] == (
            sc.REVIEW_SOURCE_FLAGGED if flagged else sc.REVIEW_SOURCE_SAMPLE
        )
        assert a[sc.REVIEW_SAMPLE_PROBABILITY] == (1.0 if flagged else float(SAMPLE))
        assert s["resource"]["service.name"] == sc.REVIEW_SERVICE_NAME
        needed, verdicts = given[key]
        if sc.REVIEW_VERDICT in a:
            assert not s["events"]
            assert a[sc.REVIEW_VERDICT] == (
                sc.REVIEW_VERDICT_NEEDED if needed == "yes" else sc.REVIEW_VERDICT_NOT_NEEDED
            )
        else:
            got = {}
            for ev in s["events"]:
                e = ev["attributes"]
                assert ev["name"] == sc.REVIEW_FINDING_EVENT and e[sc.REVIEW_FINDING_SPAN_ID]
                got[e[sc.FRICTION_KIND]] = (
                    "other:" + e[sc.REVIEW_FINDING_ACTUAL_KIND]
                    if e[sc.REVIEW_FINDING_VERDICT] == sc.FINDING_OTHER_KIND
                    else e[sc.REVIEW_FINDING_VERDICT]
                )
            assert got == verdicts
    notes = [
        s["attributes"].get(sc.REVIEW_NOTE) for s in reviews if sc.REVIEW_NOTE in s["attributes"]
    ]
    assert notes == ["the user had to ask twice"]

    # the same spans at a real OTLP receiver
    received = otlp_receiver.wait_for_spans(lambda s: s["name"] == sc.REVIEW_SPAN)
    assert sorted(s["span_id"] for s in received) == sorted(s["span_id"] for s in reviews)

    # the report: precision and recall from exactly these verdicts
    proc = subprocess.run(
        [sys.executable, "-m", "frictionlens.cli", "report", str(store), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    q = json.loads(proc.stdout)["review_quality"]
    n_f = sum(1 for k in given if summaries[k]["attributes"][sc.REVIEW_NEEDED])
    n_u = len(given) - n_f
    p = q["conversation_precision"]
    low, high = wilson(n_f - 1, n_f)
    assert (p["value"], p["low"], p["high"]) == (
        round((n_f - 1) / n_f, 4),
        round(low, 4),
        round(high, 4),
    )
    assert (p["conversations"], p["verdicts"]) == (n_f, n_f)
    m = q["miss_rate"]
    assert (m["value"], m["conversations"]) == (round(1 / n_u, 4), n_u)
    hit = n_flagged_store * (n_f - 1) / n_f
    miss = n_unflagged_store * (1 / n_u)
    assert q["recall"]["value"] == round(hit / (hit + miss), 4)
    assert q["recall"]["low"] < q["recall"]["value"] < q["recall"]["high"]
    expected: dict[str, dict[str, int]] = {}
    for _, verdicts in given.values():
        for kind, v in verdicts.items():
            row = expected.setdefault(kind, {"confirmed": 0, "false_alarm": 0, "other_kind": 0})
            row["other_kind" if v.startswith("other:") else v] += 1
    got = {k["kind"]: k for k in q["kinds"]}
    assert set(got) == set(expected)
    for kind, row in expected.items():
        n = sum(row.values())
        assert {c: got[kind][c] for c in row} == row and got[kind]["findings"] == n
        assert got[kind]["value"] == round(row["confirmed"] / n, 4)
    assert q["reviewers"] == ["ann"] and q["disagreements"] == []
    text = subprocess.run(
        [
            sys.executable,
            "-m",
            "frictionlens.cli",
            "report",
            str(store),
            "--html",
            str(store / "r.html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert f"{SECTION}:" in text.stdout and "Recall (share of the conversations" in text.stdout
    html = (store / "r.html").read_text("utf-8")
    assert f"<h2>{SECTION}</h2>" in html and f"{q['recall']['value']:.0%}" in html


def _chat_store(out: Path) -> None:
    """Real OpenAI SDK calls to the local server, content captured: a correction whose first
    message tries to inject a script, and a happy conversation."""
    with LocalLLMServer() as server:
        frictionlens.instrument(
            data_dir=out,
            exporter="file",
            capture_content=True,
            sample_rate=1.0,
            salt="review-test",
            providers=["openai"],
        )
        try:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="test")
            for cid, turns in (
                (
                    "c-inject",
                    [
                        "<script>document.title='pwned'</script> How do I block my card?",
                        "No, I meant my credit card, not the debit card.",
                    ],
                ),
                ("c-happy", ["Where can I see my statements?", "Thanks, and is there a limit?"]),
            ):
                history: list[dict[str, str]] = []
                with frictionlens.session(cid):
                    for text in turns:
                        history.append({"role": "user", "content": text})
                        reply = client.chat.completions.create(model="gpt-test", messages=history)
                        history.append(
                            {"role": "assistant", "content": reply.choices[0].message.content}
                        )
        finally:
            frictionlens.uninstrument()


def test_captured_text_is_shown_as_text_never_run(tmp_path, browser):
    store = tmp_path / "chat"
    _chat_store(store)
    page = browser.new_page()
    with review_server(store, "--sample", "1") as (base, _):
        page.goto(base + "/")
        page.click("text=Review the next one")
        body = page.inner_text("body")
        assert "Content capture was off" not in body
        flagged = "<script>document.title='pwned'</script> How do I block my card?" in body
        if not flagged:  # the happy one came first
            assert "Where can I see my statements?" in body
            page.check("input[value=no]")
            page.fill("input[name=reviewer]", "ann")
            page.click("button[value=verdict]")
            page.click("button[value=findings]")
            body = page.inner_text("body")
        assert "<script>document.title='pwned'</script> How do I block my card?" in body
        assert "No, I meant my credit card" in body
        assert page.title() != "pwned" and page.locator("td script").count() == 0
        page.check("input[value=yes]")
        page.fill("input[name=reviewer]", "ann")
        page.click("button[value=verdict]")
        assert page.locator("select[name=f0]").count() == 1
        assert "correction" in page.inner_text("label[for=f0]")
    page.close()


def test_a_forged_cross_site_form_and_a_missing_token_change_nothing(store, browser):
    traces = store / TRACES_FILE
    page = browser.new_page()
    with review_server(store, "--sample", SAMPLE) as (base, _):
        page.goto(base + "/")
        page.click("text=Review the next one")
        target = page.url + "/verdict"
        before = traces.stat().st_size
        # a page of another site the reviewer has open posts a verdict to the review server
        page.goto("about:blank")
        page.set_content(
            f'<form method="post" action="{target}"><input name="needed" value="yes">'
            '<input name="reviewer" value="mallory"><button>go</button></form>'
        )
        with page.expect_navigation():
            page.click("button")
        assert "Form expired or forged" in page.inner_text("body")
        assert "Nothing was recorded" in page.inner_text("body")
        assert traces.stat().st_size == before
    with review_server(store, "--token", "s3cret-token") as (base, _):
        response = page.goto(base + "/")
        assert response.status == 401 and "Token required" in page.inner_text("body")
        response = page.goto(base + "/?token=s3cret-token")
        assert response.status == 200 and page.url == base + "/"  # the token left the URL
        assert "Review queue" in page.inner_text("h1")
        assert page.reload().status == 200
    page.close()
