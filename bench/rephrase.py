"""Rephrase detection quality on BANKING77, and the cost of the text features.

Quality: seeded samples of utterance pairs from ``shared/corpus/banking77/train.csv``
(the ``shared`` folder beside the repo): two utterances of the same intent are a rephrase;
two of different intents are not, either picked at random or from *neighbouring* intents
(intents whose names share a word, e.g. ``card_not_working`` / ``declined_card_payment``:
the hard negatives). Each scorer is rated by ROC AUC against random, hard and mixed
negatives (mixed: as many positives as negatives, half of them hard), and by precision /
recall / F1 at its threshold. Thresholds are tuned (best F0.5) on one sample and reported
on another, drawn with a different seed. Scorers: exact Jaccard of words, of 4-grams and
of both (references for the choice of shingles), the salted sketch (the default, which
estimates the 4-gram Jaccard), and WordLlama embeddings (the ``semantic`` extra) when
installed.

Duplicates: an utterance against a lightly edited copy of itself (a word dropped, a word
repeated, two letters swapped, or changed case and punctuation) should reach
DUPLICATE_THRESHOLD; two different utterances of one intent should not.

Cost: median µs per ``text_features`` call on 200-character and 4 KB messages, against
``digest`` (normalise + keyed blake2b, the feature every message had before) measured in
the same rounds.

    python bench/rephrase.py            # ~1 minute
    python bench/rephrase.py --quick    # a few seconds, smoke test
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from frictionlens.features import text as textfeat  # noqa: E402
from frictionlens.features.record import TextFeatures  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus" / "banking77" / "train.csv"
SALT = b"bench-rephrase-salt"
TUNE_SEED, EVAL_SEED = 7, 11
_NAME_STOPWORDS = {
    "a",
    "and",
    "after",
    "by",
    "for",
    "in",
    "is",
    "my",
    "not",
    "of",
    "on",
    "or",
    "the",
    "to",
    "via",
}

Pair = tuple[str, str]


def load_banking77(path: Path = CORPUS) -> dict[str, list[str]]:
    """intent -> its utterances."""
    by_intent: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            by_intent.setdefault(row["category"], []).append(row["text"])
    return by_intent


def neighbours(intents: Sequence[str]) -> dict[str, list[str]]:
    """Intents whose names share a content word: the near misses."""

    def words(name: str) -> set[str]:
        return {w for w in name.lower().strip("?").split("_") if w not in _NAME_STOPWORDS}

    return {a: [b for b in intents if b != a and words(a) & words(b)] for a in intents}


def sample_pairs(by_intent: dict[str, list[str]], n: int, seed: int) -> dict[str, list[Pair]]:
    """``n`` same-intent pairs, ``n`` random and ``n`` neighbouring different-intent pairs."""
    rng = random.Random(seed)
    intents = sorted(by_intent)
    near = neighbours(intents)
    with_near = [i for i in intents if near[i]]
    same, rand, hard = [], [], []
    for _ in range(n):
        i = rng.choice(intents)
        same.append(tuple(rng.sample(by_intent[i], 2)))
        i, j = rng.sample(intents, 2)
        rand.append((rng.choice(by_intent[i]), rng.choice(by_intent[j])))
        i = rng.choice(with_near)
        hard.append((rng.choice(by_intent[i]), rng.choice(by_intent[rng.choice(near[i])])))
    return {"same": same, "random": rand, "hard": hard}  # type: ignore[dict-item]


def roc_auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney U)."""
    scores = np.concatenate([np.asarray(pos, float), np.asarray(neg, float)])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    ranks = (upper - (counts - 1) / 2.0)[inverse]  # average 1-based rank of each tie group
    n_pos, n_neg = len(pos), len(neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def prf(
    pos: Sequence[float], neg: Sequence[float], threshold: float, beta: float = 1.0
) -> tuple[float, float, float]:
    """Precision, recall and F-beta (F1 by default) of ``score >= threshold``."""
    tp = int(np.sum(np.asarray(pos) >= threshold))
    fp = int(np.sum(np.asarray(neg) >= threshold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / len(pos) if len(pos) else 0.0
    b2 = beta * beta
    f = (1 + b2) * precision * recall / (b2 * precision + recall) if precision + recall else 0.0
    return precision, recall, f


def tuned_threshold(pos: Sequence[float], neg: Sequence[float]) -> float:
    """The threshold (0.01 grid) with the best F0.5: a false rephrase puts a happy
    conversation up for review, so precision weighs twice as much as recall."""
    return float(
        max(np.arange(0.0, 1.0, 0.01).round(2), key=lambda t: prf(pos, neg, t, beta=0.5)[2])
    )


def mixed_negatives(scored: dict[str, list[float]]) -> list[float]:
    """Half random, half hard: as many negatives as positives."""
    half = len(scored["same"]) // 2
    return scored["random"][:half] + scored["hard"][: len(scored["same"]) - half]


# --- scorers ---------------------------------------------------------------------------

Scorer = Callable[[str, str], float]


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _word_set(text: str) -> set[str]:
    return set(re.findall(r"\w+", textfeat.normalise(text)))


def _gram4_set(text: str) -> set[bytes]:
    """The shingles the sketch estimates the Jaccard of."""
    data = b" " + textfeat._words(textfeat.normalise(text)) + b" "
    return {data[i : i + 4] for i in range(len(data) - 3)}


def word_jaccard(a: str, b: str) -> float:
    return _jaccard(_word_set(a), _word_set(b))


def gram4_jaccard(a: str, b: str) -> float:
    return _jaccard(_gram4_set(a), _gram4_set(b))


def mixed_jaccard(a: str, b: str) -> float:
    """Words and 4-grams in one set."""
    return _jaccard(_word_set(a) | _gram4_set(a), _word_set(b) | _gram4_set(b))


def feature_scorer(embedder: textfeat.Embedder | None = None) -> Scorer:
    cache: dict[str, TextFeatures] = {}

    def features(t: str) -> TextFeatures:
        if t not in cache:
            cache[t] = textfeat.text_features(t, SALT, embedder)
        return cache[t]

    return lambda a, b: textfeat.similarity(features(a), features(b))


def score_pairs(scorer: Scorer, pairs: dict[str, list[Pair]]) -> dict[str, list[float]]:
    return {kind: [scorer(a, b) for a, b in items] for kind, items in pairs.items()}


def quality_row(
    name: str,
    tune: dict[str, list[float]],
    held: dict[str, list[float]],
    threshold: float | None = None,
) -> dict[str, float | str]:
    """Metrics on the held-out sample at ``threshold`` (default: tuned on the tuning one)."""
    if threshold is None:
        threshold = tuned_threshold(tune["same"], mixed_negatives(tune))
    neg = mixed_negatives(held)
    p, r, f1 = prf(held["same"], neg, threshold)
    return {
        "scorer": name,
        "auc_random": roc_auc(held["same"], held["random"]),
        "auc_hard": roc_auc(held["same"], held["hard"]),
        "auc_mixed": roc_auc(held["same"], neg),
        "threshold": threshold,
        "precision": p,
        "recall": r,
        "f1": f1,
    }


# --- duplicates ------------------------------------------------------------------------


def light_edit(text: str, rng: random.Random) -> str:
    words = text.split()
    kind = rng.randrange(4)
    if kind == 0 and len(words) > 3:
        del words[rng.randrange(len(words))]
    elif kind == 1:
        i = rng.randrange(len(words))
        words.insert(i, words[i])
    elif kind == 2:
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 3:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    else:
        return text.upper().rstrip("?.!") + "!!"
    return " ".join(words)


def duplicate_rates(
    scorer: Scorer, by_intent: dict[str, list[str]], n: int, seed: int, threshold: float
) -> tuple[float, float]:
    """(share of light edits at/above threshold, share of same-intent pairs at/above it)."""
    rng = random.Random(seed)
    intents = sorted(by_intent)
    edits = same = 0
    for _ in range(n):
        i = rng.choice(intents)
        a, b = rng.sample(by_intent[i], 2)
        edits += scorer(a, light_edit(a, rng)) >= threshold
        same += scorer(a, b) >= threshold
    return edits / n, same / n


# --- cost ------------------------------------------------------------------------------


def _messages(by_intent: dict[str, list[str]], size: int, count: int, seed: int) -> list[str]:
    """``count`` distinct messages of ``size`` characters built from real utterances."""
    rng = random.Random(seed)
    pool = [t for texts in by_intent.values() for t in texts]
    out = []
    for _ in range(count):
        parts, length = [], 0
        while length < size:
            parts.append(rng.choice(pool))
            length += len(parts[-1]) + 1
        out.append(" ".join(parts)[:size])
    return out


def cost_rows(
    by_intent: dict[str, list[str]], rounds: int, calls: int, embedder: textfeat.Embedder | None
) -> list[dict[str, float | str]]:
    variants: dict[str, Callable[[str], object]] = {
        "digest (baseline)": lambda t: textfeat.digest(t, SALT),
        "text_features": lambda t: textfeat.text_features(t, SALT),
    }
    if embedder is not None:
        variants["text_features + wordllama"] = lambda t: textfeat.text_features(t, SALT, embedder)
    rows = []
    for size in (200, 4096):
        texts = _messages(by_intent, size, calls, seed=size)
        for fn in variants.values():  # warm caches (cue index, word tokens, multiplier)
            for t in texts:
                fn(t)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(rounds):
            order = list(variants.items())
            random.Random(r).shuffle(order)
            for name, fn in order:
                start = time.perf_counter()
                for t in texts:
                    fn(t)
                samples[name].append((time.perf_counter() - start) / len(texts) * 1e6)
        base = _common.median(samples["digest (baseline)"])
        for name, values in samples.items():
            med = _common.median(values)
            rows.append(
                {
                    "message": f"{size} chars",
                    "variant": name,
                    "median_us": med,
                    "p90_us": _common.percentile(values, 90),
                    "x_baseline": med / base,
                    "over_baseline_us": med - base,
                }
            )
    return rows


def _table(rows: list[dict[str, float | str]], columns: Sequence[str]) -> str:
    def cell(v: float | str) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    cells = [[cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += [
        "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths)))
        for row in cells
    ]
    return "\n".join(lines)


def load_embedder() -> textfeat.Embedder | None:
    try:
        from frictionlens.features.semantic import WordLlamaEmbedder

        return WordLlamaEmbedder()
    except ImportError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small samples, few rounds")
    parser.add_argument("--pairs", type=int, default=3000, help="same-intent pairs per sample")
    args = parser.parse_args()
    if not CORPUS.is_file():
        sys.exit(f"corpus not found: {CORPUS}")
    n = 300 if args.quick else args.pairs
    by_intent = load_banking77()
    tune = sample_pairs(by_intent, n, TUNE_SEED)
    held = sample_pairs(by_intent, n, EVAL_SEED)
    embedder = load_embedder()

    sketch = feature_scorer()
    rows = [
        quality_row(name, score_pairs(fn, tune), score_pairs(fn, held))
        for name, fn in (
            ("word jaccard (exact)", word_jaccard),
            ("4-gram jaccard (exact)", gram4_jaccard),
            ("words+4-grams jaccard (exact)", mixed_jaccard),
        )
    ]
    sketch_tune, sketch_held = score_pairs(sketch, tune), score_pairs(sketch, held)
    rows.append(quality_row("sketch (tuned)", sketch_tune, sketch_held))
    rows.append(
        quality_row(
            "sketch @ REPHRASE_THRESHOLD", sketch_tune, sketch_held, textfeat.REPHRASE_THRESHOLD
        )
    )
    if embedder is not None:
        raw = feature_scorer(embedder)
        sem_tune, sem_held = score_pairs(raw, tune), score_pairs(raw, held)
        rows.append(quality_row("wordllama (tuned)", sem_tune, sem_held))
        rows.append(
            quality_row(
                "wordllama @ REPHRASE_THRESHOLD", sem_tune, sem_held, textfeat.REPHRASE_THRESHOLD
            )
        )
    print(
        f"Rephrase detection, BANKING77: {n} same-intent, {n} random and {n} neighbouring-intent "
        f"pairs per sample; thresholds tuned (best F0.5) on seed {TUNE_SEED}, everything reported "
        f"on seed {EVAL_SEED}; P/R/F1 on the positives vs as many mixed negatives"
    )
    print(
        _table(
            rows,
            [
                "scorer",
                "auc_random",
                "auc_hard",
                "auc_mixed",
                "threshold",
                "precision",
                "recall",
                "f1",
            ],
        )
    )
    print(
        f"REPHRASE_THRESHOLD = {textfeat.REPHRASE_THRESHOLD}; EMBEDDING_EXPONENT = {textfeat.EMBEDDING_EXPONENT} "
        "(right when both '(tuned)' rows land on REPHRASE_THRESHOLD)"
        + ("" if embedder is not None else "; wordllama not installed")
    )

    # embeddings are shown to say why duplicates are judged on the sketch alone
    dup = [("sketch", sketch)] + (
        [("wordllama (unused)", feature_scorer(embedder))] if embedder is not None else []
    )
    print(f"\nDuplicates at DUPLICATE_THRESHOLD = {textfeat.DUPLICATE_THRESHOLD}")
    print(
        _table(
            [
                {"scorer": name, "light_edits_flagged": e, "same_intent_flagged": s}
                for name, fn in dup
                for e, s in [
                    duplicate_rates(fn, by_intent, n, EVAL_SEED, textfeat.DUPLICATE_THRESHOLD)
                ]
            ],
            ["scorer", "light_edits_flagged", "same_intent_flagged"],
        )
    )

    queries = [t for texts in by_intent.values() for t in texts]
    user_cues = [k for k in textfeat.CUE_KINDS if k not in textfeat.ANSWER_CUES]
    counts = dict.fromkeys(user_cues, 0)
    for t in queries:
        for kind in textfeat.cues(t) & counts.keys():
            counts[kind] += 1
    print(
        f"\nUser-message cues on the {len(queries)} BANKING77 queries (first turns: none is "
        "friction, so every hit is a false cue for a stage that read first turns)"
    )
    print(
        _table(
            [{"kind": k, "queries": c, "share": c / len(queries)} for k, c in counts.items()],
            ["kind", "queries", "share"],
        )
    )

    rounds, calls = (5, 50) if args.quick else (31, 200)
    print(
        f"\nCost per message, {rounds} rounds of {calls} distinct messages (median and p90 over rounds)"
    )
    print(
        _table(
            cost_rows(by_intent, rounds, calls, embedder),
            ["message", "variant", "median_us", "p90_us", "x_baseline", "over_baseline_us"],
        )
    )


if __name__ == "__main__":
    main()
