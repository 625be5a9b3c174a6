"""Detection quality on the labelled conversations: per-category and per-kind precision,
recall and F1 over every span that can show friction (each step's span, and the summary),
and conversation-level review precision / recall.

    python3 -m tests.scenarios.friction_quality

prints the tables: each conversation alone with spans built directly, the same through the
real OpenAI SDK and ``instrument()``, and all conversations interleaved through one stage.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan

from frictionlens import semconv
from frictionlens.processors.friction import kinds as K
from tests.scenarios.friction_model import Driver, Scenario, Step, steps

HARD_NEGATIVE = "hard_negative"
CATEGORIES = (
    semconv.CATEGORY_MISALIGNMENT,
    semconv.CATEGORY_STAGNATION,
    semconv.CATEGORY_DISENGAGEMENT,
)


def findings(span: ReadableSpan) -> set[str]:
    """Friction kinds a span shows, from its GenAI evaluation events."""
    return {
        str(e.attributes[semconv.GEN_AI_EVALUATION_SCORE_LABEL])
        for e in span.events
        if e.name == semconv.GEN_AI_EVALUATION_RESULT
        and (e.attributes or {}).get(semconv.GEN_AI_EVALUATION_NAME) == semconv.EVALUATION_FRICTION
    }


def review_expected(expected: Iterable[str], rule: dict[str, int] | None = None) -> bool:
    """The review rule applied to the ground-truth labels."""
    expected = list(expected)
    rule = K.default_review_rule() if rule is None else rule
    return K.crossing(rule, Counter(expected), expected) is not None


@dataclass
class Outcome:
    """One played scenario: per span, expected vs found kinds; the summary."""

    scenario: Scenario
    units: list[tuple[str, frozenset[str], set[str]]]
    """(what, expected kinds, found kinds) for each step's span and the summary"""
    summary: ReadableSpan | None
    ended: str
    """how the driver ended it (the scenario's own end, or CLOSE when interleaved)"""

    @property
    def review_found(self) -> bool:
        return bool(
            self.summary is not None and (self.summary.attributes or {}).get(semconv.REVIEW_NEEDED)
        )

    @property
    def review_expected(self) -> bool:
        return review_expected([k for _, expected, _ in self.units for k in expected])

    @property
    def mismatches(self) -> list[str]:
        return [
            f"{what}: expected {sorted(exp)}, found {sorted(got)}"
            for what, exp, got in self.units
            if set(exp) != got
        ]


def outcome(
    scenario: Scenario,
    played: Sequence[tuple[Step, int]],
    spans: Sequence[ReadableSpan],
    ended: str,
) -> Outcome:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    ids = {span_id for _, span_id in played}
    units = []
    for i, (step, span_id) in enumerate(played):
        span = by_id.get(span_id)
        units.append(
            (
                f"step {i + 1} {step.action}",
                step.expect,
                findings(span) if span is not None else {"<missing>"},
            )
        )
    summary = next(
        (
            s
            for s in spans
            if s.name == semconv.CONVERSATION_SPAN
            and any(link.context.span_id in ids for link in s.links)
        ),
        None,
    )
    end_expect = (
        scenario.end_expect if ended == scenario.end else frozenset()
    )  # silence needs an idle end
    units.append(
        ("summary", end_expect, findings(summary) if summary is not None else {"<missing>"})
    )
    return Outcome(scenario, units, summary, ended)


def run(scenarios: Sequence[Scenario], make_driver: Callable[[], Driver]) -> list[Outcome]:
    """Each scenario alone, through a fresh driver."""
    out = []
    for scenario in scenarios:
        driver = make_driver()
        played = list(steps(scenario, driver))
        out.append(outcome(scenario, played, driver.finish(scenario.end), scenario.end))
    return out


def run_interleaved(scenarios: Sequence[Scenario], driver: Driver, end: str) -> list[Outcome]:
    """All scenarios at once through one driver, steps round-robin (as concurrent users)."""
    games = [
        steps(s, driver, think_s=1.0) for s in scenarios
    ]  # one clock for all: ~1 min between turns
    played: list[list[tuple[Step, int]]] = [[] for _ in scenarios]
    for row in itertools.zip_longest(*games):
        for i, item in enumerate(row):
            if item is not None:
                played[i].append(item)
    spans = driver.finish(end)
    return [outcome(s, p, spans, end) for s, p in zip(scenarios, played)]


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, expected: bool, found: bool) -> None:
        self.tp += expected and found
        self.fp += found and not expected
        self.fn += expected and not found
        self.tn += not (expected or found)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    categories: dict[str, PRF] = field(default_factory=dict)
    kinds: dict[str, PRF] = field(default_factory=dict)
    review: PRF = field(default_factory=PRF)
    happy: int = 0
    happy_with_friction: list[str] = field(default_factory=list)
    """plain happy conversations (no labelled friction) that showed friction or got flagged"""
    hard_negatives: int = 0
    hard_negatives_with_friction: list[str] = field(default_factory=list)
    scenarios: int = 0
    units: int = 0

    @property
    def macro_f1(self) -> float:
        return sum(p.f1 for p in self.categories.values()) / len(self.categories)


def score(outcomes: Iterable[Outcome]) -> Report:
    report = Report({c: PRF() for c in CATEGORIES}, {k: PRF() for k in K.KINDS})
    for o in outcomes:
        report.scenarios += 1
        for _, expected, found in o.units:
            report.units += 1
            for c in CATEGORIES:
                report.categories[c].add(
                    any(K.category(k) == c for k in expected),
                    any(K.category(k) == c for k in found),
                )
            for k in K.KINDS:
                report.kinds[k].add(k in expected, k in found)
        report.review.add(o.review_expected, o.review_found)
        if not o.scenario.expected_kinds:
            noisy = any(found for _, _, found in o.units) or o.review_found
            if HARD_NEGATIVE in o.scenario.tags:
                report.hard_negatives += 1
                if noisy:
                    report.hard_negatives_with_friction.append(o.scenario.name)
            else:
                report.happy += 1
                if noisy:
                    report.happy_with_friction.append(o.scenario.name)
    return report


def format_report(report: Report, title: str) -> str:
    lines = [
        f"{title}: {report.scenarios} conversations, {report.units} labelled spans",
        "",
        "| category | precision | recall | F1 | TP | FP | FN |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in report.categories.items():
        lines.append(
            f"| {name} | {p.precision:.3f} | {p.recall:.3f} | {p.f1:.3f} | {p.tp} | {p.fp} | {p.fn} |"
        )
    lines.append(f"| **macro** | | | **{report.macro_f1:.3f}** | | | |")
    lines += [
        "",
        "| kind | precision | recall | F1 | TP | FP | FN |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in report.kinds.items():
        lines.append(
            f"| {name} | {p.precision:.3f} | {p.recall:.3f} | {p.f1:.3f} | {p.tp} | {p.fp} | {p.fn} |"
        )
    r = report.review
    lines += [
        "",
        f"conversation review: precision {r.precision:.3f}, recall {r.recall:.3f} "
        f"(TP {r.tp}, FP {r.fp}, FN {r.fn})",
        f"happy conversations with friction: {len(report.happy_with_friction)} of {report.happy} "
        f"{report.happy_with_friction or ''}",
        f"hard negatives with friction: {len(report.hard_negatives_with_friction)} of {report.hard_negatives} "
        f"{report.hard_negatives_with_friction or ''}",
    ]
    return "\n".join(lines)


def main() -> None:
    from tests.scenarios.friction_cases import SCENARIOS
    from tests.scenarios.friction_model import CLOSE
    from tests.scenarios.friction_spans import SpanDriver

    outcomes = run(SCENARIOS, SpanDriver)
    print(format_report(score(outcomes), "each conversation alone"))
    for o in outcomes:
        for m in o.mismatches:
            print(f"  {o.scenario.name}: {m}")
    print()
    try:
        from tests.scenarios.friction_sdk import SDKDriver

        sdk = run(SCENARIOS, SDKDriver)
    except ImportError as exc:
        print(f"real OpenAI SDK: not run ({exc})")
    else:
        print(format_report(score(sdk), "through the real OpenAI SDK (instrument())"))
    print()
    outcomes = run_interleaved(SCENARIOS, SpanDriver(), CLOSE)
    print(format_report(score(outcomes), "all conversations interleaved, closed at shutdown"))
    for o in outcomes:
        for m in o.mismatches:
            print(f"  {o.scenario.name}: {m}")


if __name__ == "__main__":
    main()
