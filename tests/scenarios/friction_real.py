"""Friction on real user text: BANKING77 utterances as two-turn support conversations.

The detectors were not written with these texts in view. Each conversation opens with a real
customer message (``shared/corpus/banking77``: 10k real queries to a bank's assistant, one
of 77 intents each) and has one of three shapes:

* ``restate``: the first answer fails (generic, an apology, a definition) and the user asks
  for the same thing in other words: another real utterance of the same intent, written by
  another person. Friction (misalignment) on the second call; the conversation needs review.
* ``neighbour``: the first answer fails the same way and the user asks a neighbouring but
  different question (an intent whose name shares a word: ``card_arrival`` ->
  ``card_linking``). No friction.
* ``follow_up``: the first answer engages with the question and the user goes on with a
  neighbouring question: an ordinary follow-up. No friction.

User messages are real; the answers are ours (``GENERIC`` templates, and engaged answers
that take up the question's own words, as real answers do). The intents are split in two
by a seeded shuffle: thresholds are chosen on the ``tune`` part only, the ``held-out`` part
is only reported. The non-answer check is also run on real model answers to their real
requests (``shared/corpus/cassettes``: recorded OpenAI chat completions, chats and agent
steps), where nearly every answer engaged. Pure logic: conversations go straight into the friction stage as the
spans the OpenAI instrumentation makes (tests/scenarios/friction_spans.py); the test runs a
slice of them through the real SDK and the local server as well.

    python -m tests.scenarios.friction_real                 # both parts, full (~30 s)
    python -m tests.scenarios.friction_real --per-intent 2  # a slice (a few seconds)
    python -m tests.scenarios.friction_real --sweep         # thresholds, tune part only
    python -m tests.scenarios.friction_real --semantic      # with the wordllama embedder
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from frictionlens import semconv
from frictionlens.features.answer import content_words, non_answer
from frictionlens.features.text import cues
from frictionlens.processors.friction import kinds as K
from tests.scenarios.friction_model import CLOSE
from tests.scenarios.friction_quality import PRF, findings

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / ".." / "shared" / "corpus" / "banking77" / "train.csv"
CASSETTES = ROOT / ".." / "shared" / "corpus" / "cassettes"
SEED = 17
TUNE, HELD_OUT = "tune", "held-out"
RESTATE, NEIGHBOUR, FOLLOW_UP = "restate", "neighbour", "follow_up"
SYSTEM = "You are the support assistant of a mobile bank. Answer briefly."

#: answers that fail the question: boilerplate, apologies, offers of something else, a
#: definition of the topic instead of the how-to; {topic} is a word of the intent's name
GENERIC = (
    "Thank you for reaching out! We are always happy to help with your banking needs.",
    "I'm sorry, I couldn't find anything about that in our help articles.",
    "Unfortunately I don't have that information at the moment.",
    "Our app gives you a full overview of your account at any time, wherever you are.",
    "Alternatively, you could open a savings account and earn interest on your balance.",
    "Banking with us is simple, secure and available around the clock.",
    "{topic} is an important part of managing your money with us.",
    "{topic} is handled by our operations team according to our terms and conditions.",
    "Would you like to hear about our premium plan? It comes with extra benefits.",
    "We offer a wide range of services for personal and business customers.",
)
#: answers that take the question up: real answers repeat its key words
ENGAGED = (
    "You can do that in the app: about {words}, open the account menu, pick the matching "
    "option and follow the steps. It usually takes a few minutes.",
    "Regarding {words}: this is usually resolved within one working day. If it is not, "
    "send us the details from the app and we will look into it.",
    "For {words}, go to Settings, then Cards and payments; the option is listed there "
    "with a short explanation of the fees and limits.",
)
#: the second answer (not judged): unlike either first answer, so it repeats nothing
SECOND = (
    "Thanks, I have noted that for {words}; you will get a confirmation by e-mail shortly.",
    "Sure. For {words} there is a dedicated page under Help in the app, with a form to reach us.",
)
_NAME_WORDS = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Conversation:
    part: str
    shape: str
    intent: str
    turns: tuple[tuple[str, str], ...]
    """(user message, answer) per turn"""

    @property
    def friction_expected(self) -> bool:
        return self.shape == RESTATE


@dataclass
class Result:
    """What one part measured."""

    conversations: int = 0
    rephrase: PRF = field(default_factory=PRF)
    """misalignment on the second call: ``restate`` (positive) vs ``neighbour`` (negative)"""
    review: PRF = field(default_factory=PRF)
    """conversation needs review: ``restate`` vs ``neighbour`` and ``follow_up``"""
    follow_ups: int = 0
    follow_ups_flagged: int = 0
    """``follow_up`` conversations with any finding"""
    first_calls_flagged: int = 0
    non_answer: PRF = field(default_factory=PRF)
    """``frictionlens.output.non_answer`` on first answers: GENERIC (positive) vs ENGAGED"""
    kinds: dict[str, int] = field(default_factory=dict)
    """findings on second calls, by kind"""


def corpus_available() -> bool:
    return CORPUS.is_file()


@cache
def _rephrase_bench() -> Any:
    """bench/rephrase.py: the BANKING77 loader and the neighbouring-intent rule it documents."""
    spec = importlib.util.spec_from_file_location("bench_rephrase", ROOT / "bench" / "rephrase.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def split() -> dict[str, list[str]]:
    """part -> its intents (a seeded shuffle of the sorted intents, halved)."""
    intents = sorted(_rephrase_bench().load_banking77(CORPUS))
    random.Random(SEED).shuffle(intents)
    half = len(intents) // 2
    return {TUNE: sorted(intents[:half]), HELD_OUT: sorted(intents[half:])}


def conversations(part: str, per_intent: int | None = None) -> list[Conversation]:
    """Every conversation of a part; ``per_intent`` of each shape per intent (None: as many
    as the intent's utterances allow, each utterance opening at most one conversation)."""
    bench = _rephrase_bench()
    by_intent = bench.load_banking77(CORPUS)
    intents = split()[part]
    near = {i: [j for j in n if j in intents] for i, n in bench.neighbours(intents).items()}
    rng = random.Random(f"{SEED}-{part}")
    out: list[Conversation] = []
    for intent in intents:
        texts = list(by_intent[intent])
        rng.shuffle(texts)
        others = near[intent] or [j for j in intents if j != intent]
        n = len(texts) // 4 if per_intent is None else min(per_intent, len(texts) // 4)
        topic = _topic(intent)
        for k in range(n):
            first, again, second, third = texts[4 * k : 4 * k + 4]
            generic = rng.choice(GENERIC).format(topic=topic)
            other = rng.choice(by_intent[rng.choice(others)])
            out.append(Conversation(part, RESTATE, intent, ((first, generic), (again, ""))))
            out.append(Conversation(part, NEIGHBOUR, intent, ((second, generic), (other, ""))))
            other = rng.choice(by_intent[rng.choice(others)])
            engaged = rng.choice(ENGAGED).format(words=_key_words(third))
            out.append(Conversation(part, FOLLOW_UP, intent, ((third, engaged), (other, ""))))
    for i, conv in enumerate(out):
        second = conv.turns[1][0]
        answer = SECOND[i % len(SECOND)].format(words=_key_words(second))
        out[i] = Conversation(conv.part, conv.shape, conv.intent, (conv.turns[0], (second, answer)))
    return out


def _topic(intent: str) -> str:
    words = [w for w in _NAME_WORDS.findall(intent) if len(w) > 3]
    return (words[0] if words else intent).capitalize()


def _key_words(text: str) -> str:
    """The question's content words, in its own spelling: what an engaged answer takes up."""
    stems = content_words(text, 400)
    seen: dict[str, str] = {}
    for word in re.findall(r"[^\W\d_]{3,}", text.casefold()):
        if word[:5] in stems and word[:5] not in seen:
            seen[word[:5]] = word
    return " ".join(list(seen.values())[:4]) or "your question"


def play(convs: list[Conversation], driver: Any) -> Iterator[tuple[Conversation, list, Any]]:
    """Each conversation through ``driver`` (history resent, as chat apps do): the calls'
    spans and the conversation's summary span."""
    calls: dict[str, list[int]] = {}
    for i, conv in enumerate(convs):
        cid = f"real-{i}"
        history = [("system", SYSTEM)]
        ids = []
        for user, answer in conv.turns:
            history.append(("user", user))
            ids.append(driver.call(list(history), answer, conversation_id=cid))
            history.append(("assistant", answer))
        calls[cid] = ids
    spans = driver.finish(CLOSE)
    by_id = {s.context.span_id: s for s in spans}
    summaries = {
        (s.attributes or {}).get(semconv.CONVERSATION_ID): s
        for s in spans
        if s.name == semconv.CONVERSATION_SPAN
    }
    for i, conv in enumerate(convs):
        cid = f"real-{i}"
        yield conv, [by_id[s] for s in calls[cid]], summaries.get(cid)


def measure(convs: list[Conversation], driver: Any) -> Result:
    res = Result()
    for conv, spans, summary in play(convs, driver):
        res.conversations += 1
        first, second = spans[0], spans[1]
        res.first_calls_flagged += bool(findings(first))
        res.non_answer.add(
            conv.shape != FOLLOW_UP,
            bool((first.attributes or {}).get(semconv.OUTPUT_NON_ANSWER)),
        )
        found = findings(second)
        for kind in found:
            res.kinds[kind] = res.kinds.get(kind, 0) + 1
        misaligned = any(K.category(k) == semconv.CATEGORY_MISALIGNMENT for k in found)
        if conv.shape != FOLLOW_UP:
            res.rephrase.add(conv.friction_expected, misaligned)
        else:
            res.follow_ups += 1
            res.follow_ups_flagged += bool(found)
        review = bool(summary is not None and (summary.attributes or {}).get(semconv.REVIEW_NEEDED))
        res.review.add(conv.friction_expected, review)
    return res


def run_part(
    part: str, per_intent: int | None = None, embedder: Any = None, **stage_options: Any
) -> Result:
    from tests.scenarios.friction_spans import SpanDriver

    driver = SpanDriver(embedder=embedder, **stage_options)
    return measure(conversations(part, per_intent), driver)


def cassette_exchanges() -> list[tuple[str, str]]:
    """(last user message, answer) of every recorded non-streamed OpenAI chat completion."""
    import yaml

    out = []
    for line in (CASSETTES / "index.jsonl").read_text().splitlines():
        doc = yaml.safe_load((CASSETTES / json.loads(line)["file"]).read_text())
        for it in (doc or {}).get("interactions", []):
            if "chat/completions" not in it["request"].get("uri", ""):
                continue
            body = it["response"].get("body")
            text = body.get("string") if isinstance(body, dict) else body
            try:
                request = json.loads(it["request"].get("body") or "{}")
                answer = json.loads(text)["choices"][0]["message"]["content"]
            except (ValueError, TypeError, KeyError, IndexError):
                continue  # a stream, an error, a tool call
            users = [
                m["content"]
                for m in request.get("messages") or []
                if m.get("role") == "user" and isinstance(m.get("content"), str)
            ]
            if users and answer:
                out.append((users[-1], answer))
    return out


def cassette_non_answers() -> tuple[int, int]:
    """(answers judged non-answers, answers) on the recorded real traffic."""
    pairs = cassette_exchanges()
    return sum(non_answer(q, a, cues(a)) for q, a in pairs), len(pairs)


def table(results: dict[str, Result]) -> str:
    rows = [
        "| part | conversations | rephrase after non-answer P / R / F1 | review P / R "
        "| ordinary follow-ups flagged | non-answer detected (generic / engaged answers) |",
        "|---|---|---|---|---|---|",
    ]
    for part, r in results.items():
        na = r.non_answer
        rows.append(
            f"| {part} | {r.conversations} "
            f"| {r.rephrase.precision:.3f} / {r.rephrase.recall:.3f} / {r.rephrase.f1:.3f} "
            f"| {r.review.precision:.3f} / {r.review.recall:.3f} "
            f"| {r.follow_ups_flagged}/{r.follow_ups} ({r.follow_ups_flagged / max(1, r.follow_ups):.1%}) "
            f"| {na.recall:.1%} / {na.fp / max(1, na.fp + na.tn):.1%} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-intent", type=int, default=None)
    parser.add_argument("--sweep", action="store_true", help="thresholds on the tune part")
    parser.add_argument("--semantic", action="store_true", help="wordllama embeddings")
    args = parser.parse_args(argv)
    if not corpus_available():
        sys.exit("the BANKING77 corpus (shared/corpus/banking77 beside the repo) is absent")
    embedder = None
    if args.semantic:
        from frictionlens.features.semantic import WordLlamaEmbedder

        embedder = WordLlamaEmbedder()
    t0 = time.perf_counter()
    if args.sweep:
        print(
            "| after_failure_threshold | F1 | P | R | follow-ups flagged |\n|---|---|---|---|---|"
        )
        for bar in (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.10, 0.12, 0.15, 0.2, 0.25):
            r = run_part(TUNE, args.per_intent, embedder, after_failure_threshold=bar)
            print(
                f"| {bar:.2f} | {r.rephrase.f1:.3f} | {r.rephrase.precision:.3f} "
                f"| {r.rephrase.recall:.3f} | {r.follow_ups_flagged}/{r.follow_ups} |"
            )
    else:
        results = {part: run_part(part, args.per_intent, embedder) for part in (TUNE, HELD_OUT)}
        print(table(results))
        for part, r in results.items():
            print(f"{part}: second-call findings {dict(sorted(r.kinds.items()))}")
        if CASSETTES.is_dir():
            flagged, total = cassette_non_answers()
            print(f"real model answers (cassettes) judged non-answers: {flagged}/{total}")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
