"""Detection quality on the labelled conversations (tests/scenarios/friction_cases.py).

The floors below are the documented figures (docs/quality.md, friction table); the suite
measures more than it asserts, see ``python3 -m tests.scenarios.friction_quality``.
"""

from __future__ import annotations

import pytest

from frictionlens import semconv
from frictionlens.processors.friction import kinds as K
from tests.scenarios.friction_cases import SCENARIOS
from tests.scenarios.friction_model import CLOSE
from tests.scenarios.friction_quality import HARD_NEGATIVE, run, run_interleaved, score
from tests.scenarios.friction_spans import SpanDriver

MACRO_F1_FLOOR = 0.95
CATEGORY_F1_FLOOR = 0.9
REVIEW_PRECISION_FLOOR = 0.9
REVIEW_RECALL_FLOOR = 0.95
HARD_NEGATIVES_WITH_FRICTION_MAX = 2  # the same question about another museum / city


@pytest.fixture(scope="module")
def outcomes():
    return run(SCENARIOS, SpanDriver)


def test_suite_covers_every_kind_in_every_language():
    for lang in ("en", "de", "fr", "es"):
        labelled = {k for s in SCENARIOS if s.lang == lang for k in s.expected_kinds}
        assert labelled == set(K.KINDS), (lang, set(K.KINDS) - labelled)
        assert any(
            not s.expected_kinds and HARD_NEGATIVE not in s.tags
            for s in SCENARIOS
            if s.lang == lang
        )
        assert any(HARD_NEGATIVE in s.tags for s in SCENARIOS if s.lang == lang)


def test_quality_meets_the_documented_floor(outcomes):
    report = score(outcomes)
    assert report.macro_f1 >= MACRO_F1_FLOOR
    for category, prf in report.categories.items():
        assert prf.f1 >= CATEGORY_F1_FLOOR, category
    assert report.review.precision >= REVIEW_PRECISION_FLOOR
    assert report.review.recall >= REVIEW_RECALL_FLOOR


def test_happy_conversations_stay_silent(outcomes):
    report = score(outcomes)
    assert report.happy >= 4 and report.happy_with_friction == []
    assert len(report.hard_negatives_with_friction) <= HARD_NEGATIVES_WITH_FRICTION_MAX


def test_concurrent_conversations_do_not_mix():
    """All scenarios at once through one stage find what each finds alone (summaries aside)."""
    alone = {
        o.scenario.name: [u for u in o.units if u[0] != "summary"]
        for o in run(SCENARIOS, SpanDriver)
    }
    together = run_interleaved(SCENARIOS, SpanDriver(), CLOSE)
    for o in together:
        assert [u for u in o.units if u[0] != "summary"] == alone[o.scenario.name], o.scenario.name
        assert o.summary is not None
        assert (
            o.summary.attributes[semconv.CONVERSATION_END_REASON]
            == semconv.CONVERSATION_END_SHUTDOWN
        )


def test_the_real_openai_sdk_shows_the_same_friction(outcomes):
    """The same conversations through ``instrument()`` and the real SDK: span for span, the same findings."""
    pytest.importorskip("openai")
    pytest.importorskip("httpx2")
    from tests.scenarios.friction_sdk import SDKDriver

    expected = {o.scenario.name: o.units for o in outcomes}
    for o in run(SCENARIOS, SDKDriver):
        assert o.units == expected[o.scenario.name], o.scenario.name
