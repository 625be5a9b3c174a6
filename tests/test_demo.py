"""The demo's report agrees with what the demo scripted."""

from __future__ import annotations

import subprocess
import sys

from frictionlens import demo
from frictionlens.exporters import report


def test_report_matches_the_scripted_ground_truth(tmp_path):
    truth = demo.run(tmp_path, calls=900, seed=7)
    rep = report.load(tmp_path)
    flagged = {r["conversation"] for r in rep.review}
    assert flagged == truth.flagged_conversations  # every scripted friction user, and nothing else
    assert not flagged & truth.happy_conversations
    # drift: on the JSON route only, after the provider change, attributed to it
    assert rep.drift and {d["stream"] for d in rep.drift} == {rep.drift[0]["stream"]}
    changed = {
        "system_fingerprint",
        "response_model",
        "format_invalid",
        "preamble",
        "code_fence",
        "output_chars",
    }
    causes = {d["feature"]: d["cause"] for d in rep.drift if d["feature"] in changed}
    assert causes == dict.fromkeys(
        changed, "provider_change"
    )  # timing features may vary with the machine
    brute = [t for t in rep.tasks if t["brute_force"]]
    assert (
        len(brute) == truth.brute_force_tasks
        and len(rep.tasks) == truth.brute_force_tasks + truth.efficient_tasks
    )
    assert all(t["steps"] > t["expected"] for t in brute)


def test_cli_demo_and_report(demo_cli_run):
    out, stdout = demo_cli_run
    assert "Conversations needing review" in stdout and "Agent tasks: 6" in stdout
    assert (
        f"HTML report: {(out / 'report.html').resolve()}" in stdout
        and (out / "report.html").stat().st_size > 0
    )
    js = subprocess.run(
        [sys.executable, "-m", "frictionlens.cli", "report", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert js.returncode == 0 and '"review"' in js.stdout
