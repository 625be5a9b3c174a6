"""Each signal's precision and recall, measured from reviewers' verdicts (``frictionlens review``).

The population is the store's closed conversations (their summary spans), flagged or not by
the pipeline. Reviewers judge a conversation blind (did it need review?) and then each
friction finding on it. Only each reviewer's latest word on an item counts; an item judged by
several reviewers counts once, with the share of them that said yes, and where they differ the
report lists it.

- **Conversation-level precision**: the share of reviewed flagged conversations that needed
  review, with a 95% Wilson score interval.
- **Misses and recall**: the review queue draws a random sample of the unflagged
  conversations. Each reviewed one stands for ``unflagged / reviewed unflagged`` conversations
  (the inverse of the share sampled and reviewed), so the missed conversations are estimated
  as ``unflagged x miss rate``, and recall as ``flagged x precision / (flagged x precision +
  unflagged x miss rate)``. Its interval is the 2.5 and 97.5 percentiles of recall over
  ``DRAWS`` draws of the two rates from their Jeffreys posteriors, Beta(y + 1/2, n - y + 1/2),
  with a fixed seed, so the same verdicts always give the same figures.
- **Per-kind precision**: confirmed findings over judged findings of that kind, each
  conversation weighted, as above, by how many conversations with findings of its stratum
  (flagged, or unflagged) each reviewed one stands for; the interval is Wilson's on the
  weighted share with Kish's effective number of findings. Findings judged in flagged
  conversations only (the usual case) all weigh the same and it is the plain share.

Verdicts on conversations that are not in the store read (a ``--since`` window, a rotated
store) are left out and counted. The reviewed flagged conversations are taken as
representative of all flagged ones: the queue puts them by score, so review them all for
figures that do not lean on that.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from frictionlens import semconv as sc
from frictionlens.review.verdicts import Latest, Verdict, from_span, latest

#: 95% two-sided
Z = 1.959963984540054
DRAWS = 20_000
SEED = 2026
SECTION = "Signal quality from review verdicts"
_DIGITS = 4


def wilson(successes: float, n: float, z: float = Z) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (``successes`` may be fractional); None if n = 0."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _figure(value: float | None, interval: tuple[float, float] | None, **counts: Any) -> dict:
    r = None if value is None else round(value, _DIGITS)
    low, high = interval if interval else (None, None)
    return {
        "value": r,
        "low": None if low is None else round(low, _DIGITS),
        "high": None if high is None else round(high, _DIGITS),
        **counts,
    }


def _share(values: list[float], **counts: Any) -> dict:
    """Mean of per-item values in 0..1 with its Wilson interval."""
    n = len(values)
    y = sum(values)
    return _figure(y / n if n else None, wilson(y, n), needed=round(y, 2), **counts)


def _recall(
    flagged: int, unflagged: int, f: tuple[float, int], u: tuple[float, int]
) -> tuple[float | None, tuple[float, float] | None]:
    """Recall = flagged x p_f / (flagged x p_f + unflagged x p_u), and its posterior interval."""
    (yf, nf), (yu, nu) = f, u
    if nf == 0 or (nu == 0 and unflagged):
        return None, None
    pf = yf / nf
    pu = yu / nu if nu else 0.0
    hit, miss = flagged * pf, unflagged * pu
    value = hit / (hit + miss) if hit + miss else None
    rng = np.random.default_rng(SEED)
    draws_f = rng.beta(yf + 0.5, nf - yf + 0.5, DRAWS)
    draws_u = rng.beta(yu + 0.5, nu - yu + 0.5, DRAWS) if nu else np.zeros(DRAWS)
    hits = flagged * draws_f
    recall = hits / (hits + unflagged * draws_u)
    low, high = np.percentile(recall, [2.5, 97.5])
    return value, (float(low), float(high))


class Tally:
    """What the report needs from the spans it reads: conversation summaries and verdicts."""

    def __init__(self) -> None:
        self.flagged: dict[str, bool] = {}
        """summary span id -> flagged by the pipeline"""
        self.with_findings: set[str] = set()
        self.names: dict[str, str] = {}
        self.verdicts: list[Verdict] = []
        self.malformed = 0

    def watch(self, spans: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``spans``, unchanged, noting the ones this section needs as they pass."""
        for s in spans:
            name = s["name"]
            if name == sc.CONVERSATION_SPAN:
                a = s["attributes"]
                self.flagged[s["span_id"]] = a.get(sc.REVIEW_NEEDED) is True
                self.names[s["span_id"]] = str(a.get(sc.CONVERSATION_ID, ""))
                if any(k.startswith(sc.CONVERSATION_FRICTION_PREFIX) and v for k, v in a.items()):
                    self.with_findings.add(s["span_id"])
            elif name == sc.REVIEW_SPAN:
                v = from_span(s)
                if v is None:
                    self.malformed += 1
                else:
                    self.verdicts.append(v)
            yield s

    def result(self) -> dict[str, Any]:
        return quality(self.flagged, self.with_findings, self.names, self.verdicts, self.malformed)


def quality(
    flagged: dict[str, bool],
    with_findings: set[str],
    names: dict[str, str],
    verdicts: list[Verdict],
    malformed: int = 0,
) -> dict[str, Any]:
    """The section's figures (see the module docstring); JSON-ready."""
    known = [v for v in verdicts if v.span_id in flagged]
    by_item: dict[str, list[Latest]] = defaultdict(list)
    for (key, _), word in latest(known).items():
        by_item[key].append(word)
    n_flagged = sum(flagged.values())
    n_unflagged = len(flagged) - n_flagged
    needed: dict[bool, list[float]] = {True: [], False: []}
    verdict_counts = {True: 0, False: 0}
    for key, words in by_item.items():
        said = [w.needed for w in words if w.needed is not None]
        if said:
            needed[flagged[key]].append(sum(said) / len(said))
            verdict_counts[flagged[key]] += len(said)
    precision = _share(needed[True], conversations=len(needed[True]), verdicts=verdict_counts[True])
    misses = _share(needed[False], conversations=len(needed[False]), verdicts=verdict_counts[False])
    recall, interval = _recall(
        n_flagged,
        n_unflagged,
        (sum(needed[True]), len(needed[True])),
        (sum(needed[False]), len(needed[False])),
    )
    return {
        "verdicts": len(verdicts),
        "reviewers": sorted({v.reviewer for v in known}),
        "left_out": {"not_in_store": len(verdicts) - len(known), "malformed": malformed},
        "flagged": n_flagged,
        "unflagged": n_unflagged,
        "conversation_precision": precision,
        "miss_rate": misses,
        "estimated_missed": None
        if misses["value"] is None
        else round(n_unflagged * misses["value"], 1),
        "recall": _figure(
            recall,
            interval,
            conversations=len(needed[True]) + len(needed[False]),
            verdicts=verdict_counts[True] + verdict_counts[False],
        ),
        "kinds": _kinds(by_item, flagged, with_findings),
        "disagreements": _disagreements(by_item, names),
    }


def _kinds(
    by_item: dict[str, list[Latest]], flagged: dict[str, bool], with_findings: set[str]
) -> list[dict[str, Any]]:
    judged_items = {k for k, words in by_item.items() if any(w.findings for w in words)}
    weight = {}
    for stratum in (True, False):
        population = sum(1 for k in with_findings if flagged[k] == stratum)
        reviewed = sum(1 for k in judged_items if flagged[k] == stratum)
        weight[stratum] = population / reviewed if reviewed and population else 1.0
    rows: dict[str, dict[str, Any]] = {}
    sums: dict[str, list[tuple[float, float]]] = defaultdict(list)  # kind -> (weight, value)
    for key in judged_items:
        words = by_item[key]
        for fkey in sorted({f for w in words for f in w.findings}):
            said = [w.findings[fkey] for w in words if fkey in w.findings]
            kind = said[0].kind
            row = rows.setdefault(
                kind,
                {
                    "kind": kind,
                    "findings": 0,
                    "verdicts": 0,
                    sc.FINDING_CONFIRMED: 0,
                    sc.FINDING_FALSE_ALARM: 0,
                    sc.FINDING_OTHER_KIND: 0,
                },
            )
            row["findings"] += 1
            row["verdicts"] += len(said)
            for f in said:
                row[f.verdict] += 1
            confirmed = sum(f.verdict == sc.FINDING_CONFIRMED for f in said) / len(said)
            sums[kind].append((weight[flagged[key]], confirmed))
    out = []
    for kind, row in sorted(rows.items()):
        w = np.array([w for w, _ in sums[kind]])
        v = np.array([v for _, v in sums[kind]])
        p = float((w * v).sum() / w.sum())
        n_eff = float(w.sum() ** 2 / (w * w).sum())
        out.append({**row, **_figure(p, wilson(p * n_eff, n_eff))})
    return out


def _disagreements(by_item: dict[str, list[Latest]], names: dict[str, str]) -> list[dict]:
    out = []
    for key, words in sorted(by_item.items(), key=lambda kv: names.get(kv[0], "")):
        said = {w.reviewer: w.needed for w in words if w.needed is not None}
        if len(set(said.values())) > 1:
            out.append(
                {
                    "conversation": names.get(key),
                    "about": "needed review",
                    "verdicts": {r: "yes" if v else "no" for r, v in sorted(said.items())},
                }
            )
        for fkey in sorted({f for w in words for f in w.findings}):
            judged = {
                w.reviewer: w.findings[fkey].actual_kind or w.findings[fkey].verdict
                for w in words
                if fkey in w.findings
            }
            if len(set(judged.values())) > 1:
                kind = next(w.findings[fkey].kind for w in words if fkey in w.findings)
                out.append(
                    {
                        "conversation": names.get(key),
                        "about": f"finding {kind}",
                        "verdicts": dict(sorted(judged.items())),
                    }
                )
    return out


# -- presentation, shared by the terminal and the HTML report -----------------------------
def _pct(fig: dict[str, Any]) -> str:
    if fig["value"] is None:
        return "-"
    return f"{fig['value']:.0%} [{fig['low']:.0%}, {fig['high']:.0%}]"


def describe(q: dict[str, Any]) -> tuple[list[str], list[tuple[tuple[str, ...], list[tuple]]]]:
    """The section as sentences and tables of plain strings (head, rows)."""
    if not q["verdicts"]:
        return [
            "No review verdicts in this store yet. Review the flagged conversations, and a "
            "random sample of the others, with `frictionlens review PATH`; this section then "
            "measures each signal's precision and recall."
        ], []
    p, m, r = q["conversation_precision"], q["miss_rate"], q["recall"]
    lines = [
        f"{q['verdicts']} verdicts by {len(q['reviewers'])} reviewer(s) "
        f"({', '.join(q['reviewers']) or '-'}); 95% intervals in brackets.",
        f"Flagged conversations that needed review (precision): {_pct(p)}, from "
        f"{p['conversations']} of {q['flagged']} flagged conversations ({p['verdicts']} verdicts).",
        f"Unflagged conversations that needed review (misses): {_pct(m)}, from "
        f"{m['conversations']} of {q['unflagged']} unflagged conversations in the random sample "
        f"({m['verdicts']} verdicts)"
        + (
            f"; about {q['estimated_missed']:g} missed in all."
            if q["estimated_missed"] is not None
            else "."
        ),
        f"Recall (share of the conversations needing review that were flagged): {_pct(r)}"
        + (
            f", from {r['conversations']} conversations ({r['verdicts']} verdicts)."
            if r["value"] is not None
            else ": needs verdicts on flagged conversations and on the random sample of unflagged ones."
        ),
    ]
    left = q["left_out"]
    if left["not_in_store"]:
        lines.append(
            f"Left out: {left['not_in_store']} verdict(s) on conversations that are not in the "
            "traces read (outside --since, or no longer in the store)."
        )
    if left["malformed"]:
        lines.append(f"Left out: {left['malformed']} review span(s) without reviewer or link.")
    tables = []
    if q["kinds"]:
        tables.append(
            (
                (
                    "kind",
                    "findings judged",
                    "verdicts",
                    "confirmed",
                    "false alarm",
                    "other kind",
                    "precision [95% CI]",
                ),
                [
                    (
                        k["kind"],
                        str(k["findings"]),
                        str(k["verdicts"]),
                        str(k[sc.FINDING_CONFIRMED]),
                        str(k[sc.FINDING_FALSE_ALARM]),
                        str(k[sc.FINDING_OTHER_KIND]),
                        _pct(k),
                    )
                    for k in q["kinds"]
                ],
            )
        )
    if q["disagreements"]:
        tables.append(
            (
                ("reviewers disagree on", "about", "verdicts"),
                [
                    (
                        str(d["conversation"]),
                        d["about"],
                        ", ".join(f"{r}: {v}" for r, v in d["verdicts"].items()),
                    )
                    for d in q["disagreements"]
                ],
            )
        )
    return lines, tables


def render(q: dict[str, Any]) -> list[str]:
    """The section for the terminal report."""
    lines, tables = describe(q)
    out = [f"\n{SECTION}:"] + [f"  {line}" for line in lines]
    for head, rows in tables:
        widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
        for row in (head, *rows):
            out.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return out


__all__ = ["DRAWS", "SECTION", "Tally", "describe", "quality", "render", "wilson"]
