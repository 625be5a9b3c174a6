"""The review app's guards, through Flask's test client on a real demo store: CSRF, the token,
malformed or misplaced posts and conversations no longer in the store all get a clear answer
and leave the store as it was. The whole flow in a real browser is in test_review_browser.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("flask_wtf", reason="the review extra is not installed")

from frictionlens import semconv as sc  # noqa: E402
from frictionlens.cli import main  # noqa: E402
from frictionlens.exporters.filestore import TRACES_FILE  # noqa: E402
from frictionlens.review.app import create_app, is_loopback  # noqa: E402
from frictionlens.review.queue import ReviewStore  # noqa: E402
from frictionlens.review.verdicts import VerdictWriter  # noqa: E402

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def store(demo_cli_run, tmp_path) -> Path:
    out = tmp_path / "store"
    shutil.copytree(demo_cli_run[0], out)
    return out


def _app(store: Path, **kw):
    review = ReviewStore(store, 0.05)
    app = create_app(review, VerdictWriter(store), **kw)
    return app, review


def _csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)


def _flagged(review: ReviewStore):
    return next(i for i in review.queue.items if i.flagged and i.findings)


def _size(store: Path) -> int:
    return (store / TRACES_FILE).stat().st_size


def test_forms_without_a_valid_csrf_token_are_refused_and_change_nothing(store):
    app, review = _app(store)
    client = app.test_client()
    key = _flagged(review).key
    token = _csrf(client, f"/c/{key}")
    before = _size(store)
    form = {"needed": "yes", "reviewer": "ann"}
    for sent in (form, {**form, "csrf_token": "forged"}):
        r = client.post(f"/c/{key}/verdict", data=sent)
        assert r.status_code == 400
        assert "security token did not check out" in r.text and "Nothing was recorded" in r.text
    other = app.test_client()  # a token from another browser session does not do either
    r = other.post(f"/c/{key}/verdict", data={**form, "csrf_token": token})
    assert r.status_code == 400
    assert _size(store) == before
    r = client.post(f"/c/{key}/verdict", data={**form, "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/c/{key}")
    assert _size(store) > before
    assert [v.reviewer for v in review.verdicts()] == ["ann"]


def test_malformed_or_misplaced_posts_say_why_and_change_nothing(store):
    app, review = _app(store)
    client = app.test_client()
    item = _flagged(review)
    token = _csrf(client, f"/c/{item.key}")
    before = _size(store)
    cases = [
        (
            f"/c/{item.key}/verdict",
            {"needed": "maybe", "reviewer": "ann"},
            400,
            "Not a valid choice",
        ),
        (
            f"/c/{item.key}/verdict",
            {"needed": "yes", "reviewer": ""},
            400,
            "This field is required",
        ),
        (
            f"/c/{item.key}/verdict",
            {"needed": "yes", "reviewer": "x" * 81},
            400,
            "longer than 80",
        ),
        (f"/c/{item.key}/verdict", {"reviewer": "ann"}, 400, "answer yes or no"),
        (
            f"/c/{item.key}/findings",
            {"f0": sc.FINDING_CONFIRMED, "reviewer": "ann"},
            409,
            "Answer first",
        ),
        (
            "/c/0123456789abcdef/verdict",
            {"needed": "yes", "reviewer": "ann"},
            404,
            "no longer be in",
        ),
        ("/reviewer", {"reviewer": ""}, 400, "Give your name"),
    ]
    for path, data, status, says in cases:
        r = client.post(path, data={**data, "csrf_token": token})
        assert (r.status_code, says in r.text) == (status, True), (path, data, r.text[-600:])
    assert client.get("/c/0123456789abcdef").status_code == 404
    assert _size(store) == before and review.verdicts() == []

    r = client.post(
        f"/c/{item.key}/verdict", data={"needed": "yes", "reviewer": "ann", "csrf_token": token}
    )
    assert r.status_code == 302
    after_first = _size(store)
    again = client.post(
        f"/c/{item.key}/verdict", data={"needed": "no", "reviewer": "ann", "csrf_token": token}
    )
    assert again.status_code == 409 and "Already answered" in again.text
    bogus = client.post(
        f"/c/{item.key}/findings",
        data={"f0": "other:not_a_kind", "reviewer": "ann", "csrf_token": token},
    )
    assert bogus.status_code == 400 and "Not a valid choice" in bogus.text
    assert _size(store) == after_first and len(review.verdicts()) == 1


def test_the_token_is_asked_for_and_then_remembered_for_the_session(store):
    app, review = _app(store, token="s3cret-token")
    client = app.test_client()
    for path in ("/", "/?token=wrong", f"/c/{review.queue.items[0].key}"):
        r = client.get(path)
        assert r.status_code == 401 and "Token required" in r.text and "s3cret" not in r.text
    before = _size(store)
    r = client.post(
        f"/c/{review.queue.items[0].key}/verdict", data={"needed": "yes", "reviewer": "x"}
    )
    assert r.status_code == 401 and _size(store) == before
    r = client.get("/?token=s3cret-token")
    assert r.status_code == 302 and r.headers["Location"] == "/"  # out of the address bar
    assert client.get("/").status_code == 200
    bearer = app.test_client().get("/", headers={"Authorization": "Bearer s3cret-token"})
    assert bearer.status_code == 200


def test_pages_forbid_scripts_and_framing(store):
    app, review = _app(store)
    client = app.test_client()
    for path in ("/", f"/c/{review.queue.items[0].key}"):
        r = client.get(path)
        assert "script-src" not in r.headers["Content-Security-Policy"]  # default-src 'none'
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "<script" not in r.text


def test_verdicts_written_by_another_process_show_on_the_next_page(store):
    app, review = _app(store)
    client = app.test_client()
    item = review.queue.items[0]
    with client.session_transaction() as session:
        session["reviewer"] = "bob"
    assert "done with <b>0</b>" in client.get("/").text
    other = VerdictWriter(store)  # e.g. a second review server on the same store
    other.write(item.verdict("bob", needed=False))
    page = client.get(f"/c/{item.key}").text
    assert "You said it <b>did not need</b> review" in page


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("review.example.com", False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_the_command_refuses_what_it_cannot_serve_safely(store, tmp_path, capsys):
    assert main(["review", str(store), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "needs a token" in err and "Nothing was started" in err
    assert main(["review", str(tmp_path / "nothing-here")]) == 1
    assert "no traces at" in capsys.readouterr().err
    for bad in ("ftp://viewer/{trace_id}", "http://viewer/{trace}", "http://viewer/{trace_id"):
        assert main(["review", str(store), "--trace-url", bad]) == 2
        assert "trace URL" in capsys.readouterr().err
    assert main(["review", str(store), "--sample", "1.5"]) == 2
    assert "--sample must be between 0 and 1" in capsys.readouterr().err


def test_trace_links_fill_the_template_once_the_blind_answer_is_given(store):
    template = (
        "https://ui.honeycomb.io/team/environments/prod/datasets/llm/trace?trace_id={trace_id}"
        "&span={span_id}&trace_start_ts={start_s}&trace_end_ts={end_s}&c={conversation_id}"
    )
    app, review = _app(store, trace_url=template)
    client = app.test_client()
    item = _flagged(review)
    page = client.get(f"/c/{item.key}").text
    assert "honeycomb" not in page  # a trace view would show the flags
    token = CSRF.search(page).group(1)
    client.post(
        f"/c/{item.key}/verdict", data={"needed": "yes", "reviewer": "ann", "csrf_token": token}
    )
    page = client.get(f"/c/{item.key}").text
    start, end = item.start_ns // 10**9 - 60, -(-item.end_ns // 10**9) + 60
    assert (
        f"trace_id={item.trace_id}&amp;span={item.key}&amp;trace_start_ts={start}"
        f"&amp;trace_end_ts={end}&amp;c={item.conversation_id}"
    ) in page
    for step in item.steps:
        assert f"trace_id={step.trace_id}&amp;span={step.span_id}" in page
