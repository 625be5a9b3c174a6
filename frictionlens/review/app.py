"""The review app: the queue, one conversation at a time, and the verdict forms.

Flask gives routing and Jinja2 templates that escape every value by default, Flask-WTF gives
form validation with CSRF protection on every POST, and waitress serves it: the smallest
well-kept, pure-Python stack with all three, and no front-end build.

A reviewer first answers, for each conversation, whether it needed a human, seeing only what
the instrumentation observed (and the text, when the app captured it): no friction finding,
no score and no hint whether frictionlens flagged it or drew it at random. Then the page
shows the findings and the flag, links to the traces, and asks for a verdict on each finding.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from flask import Flask, abort, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from frictionlens import semconv as sc
from frictionlens.processors.friction.kinds import KINDS, category
from frictionlens.review.queue import Item, ReviewStore
from frictionlens.review.verdicts import (
    FindingVerdict,
    Latest,
    Verdict,
    VerdictWriter,
    WriteError,
)

#: placeholders a trace URL template may use
TRACE_URL_FIELDS = ("trace_id", "span_id", "conversation_id", "start_s", "end_s")
#: {start_s} / {end_s} reach this far beyond the span, so a viewer's time window holds its whole trace
LINK_MARGIN_S = 60
NAME_MAX = 80
NOTE_MAX = 2000
_UNJUDGED = ""
_OTHER = "other:"
#: no script at all; styles from the page itself; forms post only back here
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1 or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_trace_url(template: str | None) -> str | None:
    """The template, validated: http(s) and only the known placeholders; raises ValueError."""
    if not template:
        return None
    if not template.startswith(("http://", "https://")):
        raise ValueError(f"trace URL {template!r} must start with http:// or https://")
    try:
        template.format(**{f: "0" for f in TRACE_URL_FIELDS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"trace URL {template!r}: unknown or malformed placeholder ({exc}); use "
            + ", ".join("{" + f + "}" for f in TRACE_URL_FIELDS)
        ) from None
    return template


class ReviewerForm(FlaskForm):
    reviewer = StringField("Your name", validators=[DataRequired(), Length(max=NAME_MAX)])


class ConversationForm(FlaskForm):
    reviewer = StringField("Your name", validators=[DataRequired(), Length(max=NAME_MAX)])
    needed = RadioField(
        "Did this conversation need a human's attention?",
        choices=[
            SelectChoice("yes", "Yes: it went wrong for the user"),
            SelectChoice("no", "No: nothing a reviewer needs to see"),
        ],
        validators=[InputRequired(message="answer yes or no")],
    )
    note = TextAreaField("Note (optional)", validators=[Optional(), Length(max=NOTE_MAX)])


def findings_form(item: Item, formdata: Any = None, previous: Latest | None = None) -> FlaskForm:
    """One select per finding of ``item`` (confirmed, false alarm, or another kind), pre-set to
    the reviewer's previous verdicts."""

    class FindingsForm(FlaskForm):
        reviewer = StringField("Your name", validators=[DataRequired(), Length(max=NAME_MAX)])
        note = TextAreaField("Note (optional)", validators=[Optional(), Length(max=NOTE_MAX)])

    for i, f in enumerate(item.findings):
        choices = [
            SelectChoice(_UNJUDGED, "not judged"),
            SelectChoice(sc.FINDING_CONFIRMED, f"confirmed: {f.kind}"),
            SelectChoice(sc.FINDING_FALSE_ALARM, "false alarm: no friction here"),
            *(SelectChoice(_OTHER + k, f"friction, but {k}") for k in KINDS if k != f.kind),
        ]
        setattr(FindingsForm, f"f{i}", SelectField(f.kind, choices=choices))
    defaults: dict[str, str] = {}
    for i, f in enumerate(item.findings):
        prev = previous.findings.get(f.key) if previous else None
        if prev is not None:
            defaults[f"f{i}"] = (
                _OTHER + str(prev.actual_kind)
                if prev.verdict == sc.FINDING_OTHER_KIND
                else prev.verdict
            )
    return FindingsForm(formdata=formdata, **defaults)


def _status(item: Item, mine: Latest | None) -> str:
    if mine is None or mine.needed is None:
        return "to review"
    if any(f.key not in mine.findings for f in item.findings):
        return "findings to judge"
    return "done"


def _utc(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ns else "-"
    )


def create_app(
    store: ReviewStore,
    writer: VerdictWriter,
    *,
    token: str | None = None,
    trace_url: str | None = None,
    secret_key: bytes | None = None,
) -> Flask:
    """The review app over ``store``, writing verdicts with ``writer``. With ``token``, every
    request must carry it (``?token=`` once per browser session, or ``Authorization: Bearer``)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        WTF_CSRF_TIME_LIMIT=None,  # valid for the browser session: a review can take a while
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    trace_url = check_trace_url(trace_url)
    wanted = token.encode() if token else None

    def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
        return render_template(template, reviewer=session.get("reviewer"), **context), status

    def message(title: str, text: str, status: int) -> tuple[str, int]:
        return page("message.html", status, title=title, text=text)

    def link(trace_id: str, span_id: str, conversation_id: str, start: int, end: int) -> str | None:
        if trace_url is None:
            return None
        return trace_url.format(
            trace_id=trace_id,
            span_id=span_id,
            conversation_id=quote(conversation_id, safe=""),
            start_s=start // 1_000_000_000 - LINK_MARGIN_S,
            end_s=-(-end // 1_000_000_000) + LINK_MARGIN_S,
        )

    @app.before_request
    def authorize() -> Any:
        if wanted is None or session.get("authorized"):
            return None
        given = request.args.get("token") or ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer ") :]
        if given and hmac.compare_digest(given.encode(), wanted):
            session["authorized"] = True
            if "token" in request.args and request.method == "GET":
                return redirect(request.path)  # the token leaves the address bar and history
            return None
        return message(
            "Token required",
            "This review server was started with a token. Open it as "
            f"{request.host_url}?token=YOUR_TOKEN (once per browser session), or send "
            "'Authorization: Bearer YOUR_TOKEN'.",
            401,
        )

    CSRFProtect(app)  # after the token check, so a request without the token hears about that

    @app.before_request
    def refresh() -> None:
        store.refresh()

    @app.after_request
    def harden(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> tuple[str, int]:
        return message(
            "Form expired or forged",
            f"The form's security token did not check out ({exc.description}). Reload the "
            "page and submit again. Nothing was recorded.",
            400,
        )

    @app.errorhandler(404)
    def not_found(exc: Exception) -> tuple[str, int]:
        return message(
            "Not in the store",
            "No conversation of the review queue has this address: it may no longer be in "
            "the store. Nothing was recorded.",
            404,
        )

    @app.errorhandler(413)
    def too_large(exc: Exception) -> tuple[str, int]:
        return message("Form too large", "The form was too large. Nothing was recorded.", 413)

    def item_or_404(key: str) -> Item:
        item = store.queue.by_key.get(key)
        if item is None:
            abort(404)
        return item

    def next_key(after: str | None, mine: dict[str, Latest]) -> str | None:
        items = store.queue.items
        start = next((n + 1 for n, i in enumerate(items) if i.key == after), 0)
        for item in items[start:] + items[:start]:
            if item.key != after and _status(item, mine.get(item.key)) != "done":
                return item.key
        return None

    @app.get("/")
    def queue() -> tuple[str, int]:
        q = store.queue
        mine = store.latest(session.get("reviewer"))
        rows = [
            {
                "n": n,
                "item": item,
                "status": _status(item, mine.get(item.key)),
                "mine": mine.get(item.key),
                "ended": _utc(item.end_ns),
            }
            for n, item in enumerate(q.items, 1)
        ]
        return page(
            "queue.html",
            queue=q,
            rows=rows,
            done=sum(1 for r in rows if r["status"] == "done"),
            form=ReviewerForm(reviewer=session.get("reviewer")),
            store=str(store.path),
            next_key=next_key(None, mine),
        )

    @app.post("/reviewer")
    def set_reviewer() -> Any:
        form = ReviewerForm()
        if not form.validate():
            return message("Name missing", "Give your name (up to 80 characters).", 400)
        session["reviewer"] = form.reviewer.data.strip()
        return redirect(url_for("queue"))

    @app.get("/c/<key>")
    def item(key: str) -> tuple[str, int]:
        it = item_or_404(key)
        reviewer = session.get("reviewer")
        mine = store.latest(reviewer)
        return render_item(it, mine, reviewer)

    def render_item(
        it: Item,
        mine: dict[str, Latest],
        reviewer: str | None,
        status: int = 200,
        conversation_form: FlaskForm | None = None,
        form: FlaskForm | None = None,
    ) -> tuple[str, int]:
        latest = mine.get(it.key)
        revealed = latest is not None and latest.needed is not None
        n = next((n for n, i in enumerate(store.queue.items, 1) if i.key == it.key), 0)
        if revealed:
            form = form or findings_form(it, previous=latest)
            form.reviewer.data = form.reviewer.data or reviewer
        else:
            conversation_form = conversation_form or ConversationForm(reviewer=reviewer)
        return page(
            "item.html",
            status,
            item=it,
            n=n,
            total=len(store.queue.items),
            revealed=revealed,
            mine=latest,
            conversation_form=conversation_form,
            form=form,
            fields=[(f, form[f"f{i}"]) for i, f in enumerate(it.findings)] if revealed else [],
            category=category,
            link=link,
            utc=_utc,
            next_key=next_key(it.key, mine),
        )

    def record(verdict: Verdict) -> tuple[str, int] | None:
        try:
            store.add(writer.write(verdict))
        except WriteError as exc:
            return message("Not recorded", f"The store refused the verdict: {exc}.", 500)
        session["reviewer"] = verdict.reviewer
        return None

    @app.post("/c/<key>/verdict")
    def conversation_verdict(key: str) -> Any:
        it = item_or_404(key)
        form = ConversationForm()
        reviewer = (form.reviewer.data or "").strip()
        if not form.validate() or not reviewer:
            return render_item(it, store.latest(session.get("reviewer")), reviewer, 400, form)
        mine = store.latest(reviewer).get(it.key)
        if mine is not None and mine.needed is not None:
            return message(
                "Already answered",
                f"{reviewer} already said whether this conversation needed review; that answer "
                "is given before the findings are shown, once. Nothing was recorded.",
                409,
            )
        failed = record(
            it.verdict(
                reviewer, needed=form.needed.data == "yes", note=(form.note.data or "").strip()
            )
        )
        return failed or redirect(url_for("item", key=key))

    @app.post("/c/<key>/findings")
    def finding_verdicts(key: str) -> Any:
        it = item_or_404(key)
        form = findings_form(it, formdata=request.form)
        reviewer = (form.reviewer.data or "").strip()
        answered = store.latest(reviewer).get(it.key)
        if answered is None or answered.needed is None:
            return message(
                "Answer first",
                "Say whether the conversation needed review before judging its findings. "
                "Nothing was recorded.",
                409,
            )
        if not form.validate() or not reviewer:
            return render_item(it, store.latest(reviewer), reviewer, 400, form=form)
        judged = []
        for i, f in enumerate(it.findings):
            value = form[f"f{i}"].data
            if value == _UNJUDGED:
                continue
            other = value.startswith(_OTHER)
            judged.append(
                FindingVerdict(
                    f.trace_id,
                    f.span_id,
                    f.kind,
                    sc.FINDING_OTHER_KIND if other else value,
                    value[len(_OTHER) :] if other else None,
                )
            )
        note = (form.note.data or "").strip()
        if judged or note:
            failed = record(it.verdict(reviewer, note=note, findings=tuple(judged)))
            if failed:
                return failed
        following = next_key(it.key, store.latest(reviewer))
        return redirect(url_for("item", key=following) if following else url_for("queue"))

    return app


def serve(app: Flask, host: str, port: int, *, threads: int = 4) -> Any:
    """A waitress server for ``app``, bound and listening; call ``run()`` on it to serve."""
    from waitress import create_server

    return create_server(app, host=host, port=port, threads=threads, ident="frictionlens")


__all__ = ["TRACE_URL_FIELDS", "check_trace_url", "create_app", "is_loopback", "serve"]
