"""Signal quality from review verdicts: the statistics, and verdicts read back from a real store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from frictionlens import semconv as sc
from frictionlens.collector.decode import span_dicts
from frictionlens.exporters import report, review_quality
from frictionlens.exporters.filestore import read_traces
from frictionlens.review.verdicts import FindingVerdict, Verdict, VerdictWriter
from frictionlens.review.verdicts import from_span as verdict_of


def _verdict(key: str, reviewer: str, t: int, needed=None, findings=(), source="flagged"):
    return Verdict(
        conversation_id=f"c-{key}",
        trace_id="ab" * 16,
        span_id=key,
        reviewer=reviewer,
        source=source,
        sample_probability=1.0,
        needed=needed,
        findings=tuple(findings),
        time_unix_nano=t,
        verdict_span_id=f"{reviewer}{t}",
    )


def _finding(key: str, kind: str, verdict: str, actual: str | None = None) -> FindingVerdict:
    return FindingVerdict("ab" * 16, key + "0", kind, verdict, actual)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (50, 100, 0.4038, 0.5962),
    ],
)
def test_wilson_interval_matches_the_published_values(x, n, low, high):
    lo, hi = review_quality.wilson(x, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)
    assert review_quality.wilson(0, 0) is None


def test_recall_weighs_the_unflagged_sample_up_to_all_unflagged_conversations():
    flagged = {f"f{i}": True for i in range(4)} | {f"u{i}": False for i in range(96)}
    verdicts = [_verdict(f"f{i}", "ann", 1, needed=i < 3) for i in range(4)]
    verdicts += [
        _verdict(f"u{i}", "ann", 1, needed=i == 0, source="unflagged_sample") for i in range(10)
    ]
    q = review_quality.quality(flagged, set(), {}, verdicts)
    assert q["conversation_precision"]["value"] == 0.75
    assert q["conversation_precision"]["conversations"] == 4
    assert q["miss_rate"]["value"] == 0.1 and q["estimated_missed"] == 9.6
    # 4 x 0.75 flagged conversations needed review; 96 x 0.1 unflagged ones did too
    expected = 3 / (3 + 9.6)
    r = q["recall"]
    assert r["value"] == round(expected, 4)
    assert 0 < r["low"] < expected < r["high"] < 1
    assert r["conversations"] == 14 and r["verdicts"] == 14
    # ten times the sample, same rates: a narrower interval around the same recall
    flagged_big = {f"f{i}": True for i in range(40)} | {f"u{i}": False for i in range(960)}
    big = [_verdict(f"f{i}", "ann", 1, needed=i % 4 != 3) for i in range(40)]
    big += [_verdict(f"u{i}", "ann", 1, needed=i % 10 == 0) for i in range(100)]
    rb = review_quality.quality(flagged_big, set(), {}, big)["recall"]
    assert rb["value"] == r["value"]
    assert rb["high"] - rb["low"] < (r["high"] - r["low"]) / 2


def test_recall_needs_both_strata():
    flagged = {"f": True, "u": False}
    only_flagged = review_quality.quality(
        flagged, set(), {}, [_verdict("f", "ann", 1, needed=True)]
    )
    assert only_flagged["recall"]["value"] is None
    lines, _ = review_quality.describe(only_flagged)
    assert any(
        "needs verdicts on flagged conversations and on the random sample" in x for x in lines
    )


def test_latest_word_per_reviewer_counts_and_disagreements_are_listed():
    flagged = {"k": True}
    verdicts = [
        _verdict("k", "ann", 1, needed=True),
        _verdict("k", "ann", 2, findings=[_finding("k", "loop", sc.FINDING_CONFIRMED)]),
        _verdict("k", "ann", 3, needed=False),  # ann changed her mind
        _verdict("k", "bob", 2, needed=True),
        _verdict("k", "bob", 3, findings=[_finding("k", "loop", sc.FINDING_FALSE_ALARM)]),
    ]
    q = review_quality.quality(flagged, {"k"}, {"k": "conv-k"}, verdicts)
    p = q["conversation_precision"]
    assert (p["value"], p["conversations"], p["verdicts"]) == (0.5, 1, 2)
    (loop,) = q["kinds"]
    assert (loop["findings"], loop["verdicts"], loop["value"]) == (1, 2, 0.5)
    assert loop[sc.FINDING_CONFIRMED] == 1 and loop[sc.FINDING_FALSE_ALARM] == 1
    about = {(d["conversation"], d["about"]): d["verdicts"] for d in q["disagreements"]}
    assert about == {
        ("conv-k", "needed review"): {"ann": "no", "bob": "yes"},
        ("conv-k", "finding loop"): {"ann": sc.FINDING_CONFIRMED, "bob": sc.FINDING_FALSE_ALARM},
    }


def test_findings_from_the_unflagged_sample_stand_for_the_unflagged_conversations_with_findings():
    # 2 flagged conversations with findings, both judged; 50 unflagged with findings, 1 judged
    flagged = {"f1": True, "f2": True} | {f"u{i}": False for i in range(200)}
    with_findings = {"f1", "f2"} | {f"u{i}" for i in range(50)}
    verdicts = [
        _verdict("f1", "ann", 1, needed=True),
        _verdict("f1", "ann", 2, findings=[_finding("f1", "repeat", sc.FINDING_CONFIRMED)]),
        _verdict("f2", "ann", 1, needed=True),
        _verdict("f2", "ann", 2, findings=[_finding("f2", "repeat", sc.FINDING_CONFIRMED)]),
        _verdict("u0", "ann", 1, needed=False),
        _verdict("u0", "ann", 2, findings=[_finding("u0", "repeat", sc.FINDING_FALSE_ALARM)]),
    ]
    (repeat,) = review_quality.quality(flagged, with_findings, {}, verdicts)["kinds"]
    assert repeat["findings"] == 3 and repeat[sc.FINDING_CONFIRMED] == 2
    # weights 1, 1 and 50: (1 + 1) / 52
    assert repeat["value"] == round(2 / 52, 4)
    n_eff = 52**2 / (1 + 1 + 2500)
    lo, hi = review_quality.wilson(2 / 52 * n_eff, n_eff)
    assert (repeat["low"], repeat["high"]) == (round(lo, 4), round(hi, 4))


@pytest.fixture
def store(demo_cli_run, tmp_path) -> Path:
    """A copy of the demo's store, to write verdicts into."""
    out = tmp_path / "store"
    shutil.copytree(demo_cli_run[0], out)
    return out


def _summaries(path: Path) -> list[dict]:
    return [
        s for req in read_traces(path) for s in span_dicts(req) if s["name"] == sc.CONVERSATION_SPAN
    ]


def _on(summary: dict, **given) -> Verdict:
    """A verdict of ann's on the conversation of ``summary`` (its summary span)."""
    flagged = summary["attributes"][sc.REVIEW_NEEDED]
    return Verdict(
        conversation_id=summary["attributes"][sc.CONVERSATION_ID],
        trace_id=summary["trace_id"],
        span_id=summary["span_id"],
        reviewer="ann",
        source=sc.REVIEW_SOURCE_FLAGGED if flagged else sc.REVIEW_SOURCE_SAMPLE,
        sample_probability=1.0 if flagged else 0.5,
        **given,
    )


def test_verdicts_round_trip_through_the_store_and_the_report(store):
    summaries = _summaries(store)
    flagged = [s for s in summaries if s["attributes"][sc.REVIEW_NEEDED]]
    unflagged = [s for s in summaries if not s["attributes"][sc.REVIEW_NEEDED]]
    assert flagged and unflagged
    writer = VerdictWriter(store)
    given = []
    for n, s in enumerate(flagged + unflagged[:4]):
        needed = s["attributes"][sc.REVIEW_NEEDED] and n > 0 or n == len(flagged)
        given.append(writer.write(_on(s, needed=needed, note="first" if n == 0 else "")))
    writer.shutdown()
    read = [
        verdict_of(s)
        for req in read_traces(store)
        for s in span_dicts(req)
        if s["name"] == sc.REVIEW_SPAN
    ]
    assert sorted(read, key=lambda v: v.verdict_span_id) == sorted(
        given, key=lambda v: v.verdict_span_id
    )
    q = report.load(store, metrics=False).review_quality
    nf = len(flagged)
    p = q["conversation_precision"]
    assert (p["value"], p["conversations"]) == (round((nf - 1) / nf, 4), nf)
    m = q["miss_rate"]
    assert (m["value"], m["conversations"]) == (0.25, 4)
    hit, miss = len(flagged) * (nf - 1) / nf, len(unflagged) * 0.25
    assert q["recall"]["value"] == round(hit / (hit + miss), 4)
    assert q["left_out"] == {"not_in_store": 0, "malformed": 0}
    text = report.render(report.load(store, metrics=False))
    assert f"{review_quality.SECTION}:" in text and f"from {nf} of {nf} flagged" in text


def test_a_store_without_verdicts_says_how_to_get_them(store):
    proc = subprocess.run(
        [sys.executable, "-m", "frictionlens.cli", "report", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "No review verdicts in this store yet" in proc.stdout
    assert "frictionlens review PATH" in proc.stdout
    q = report.load(store, metrics=False).to_dict()["review_quality"]
    assert q["verdicts"] == 0 and q["recall"]["value"] is None and q["kinds"] == []


def test_verdicts_on_conversations_outside_the_store_read_are_left_out_and_counted(store):
    summaries = _summaries(store)
    s = summaries[0]
    end_s = max(x["end_time_unix_nano"] for x in summaries) // 1_000_000_000
    writer = VerdictWriter(store)
    writer.write(_on(s, needed=True, time_unix_nano=(end_s + 10) * 1_000_000_000))
    # --since after the demo's spans and before the verdict: the conversation is not read
    since = datetime.fromtimestamp(end_s + 2, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "frictionlens.cli",
            "report",
            str(store),
            "--json",
            "--since",
            since,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    q = json.loads(proc.stdout)["review_quality"]
    assert q["verdicts"] == 1 and q["left_out"]["not_in_store"] == 1
    assert q["conversation_precision"]["conversations"] == 0
    lines, _ = review_quality.describe(q)
    assert any("not in the traces read" in x for x in lines)
