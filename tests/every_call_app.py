"""A chat app as a new user writes one: ``frictionlens.instrument()``, plain OpenAI SDK calls,
and a normal exit without any flush. It prints ``returned <unix time>`` when ``main`` returns.

    OPENAI_BASE_URL=... OPENAI_API_KEY=... python -m tests.every_call_app TRUTH.jsonl \
        [--conversations 60] [--corrected 15] [--seed N] [--exit return|sys.exit|open-stream|threads]

Each conversation has two turns (the second resends the history); the first ``--corrected``
conversations answer the first reply with an explicit correction ("No, I meant ..."), the
others with a plain follow-up. ``--seed`` seeds the global random generator the SDK draws
trace ids from, so a sampled run is reproducible. Every call's truth (trace id, response id,
conversation, turn, corrected, thread) goes to TRUTH.jsonl as the app makes it.

``--exit`` says how the app ends: returning from ``main``; ``sys.exit(0)``; returning while
holding a streamed reply it read one chunk of (a module-level reference, with a
``weakref.finalize`` registered before ``instrument()`` so the stream's own finaliser runs
after frictionlens' exit hook); or after four threads made the calls.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import weakref

import openai

import frictionlens
from frictionlens.context import last_call

QUESTIONS = (
    "How do I reset my card PIN?",
    "What is the fee for a transfer abroad?",
    "Why was my top-up declined?",
    "Can I change my address in the app?",
    "How long does a bank transfer take?",
    "Where can I see my statements?",
)
SYSTEM = "You are a concise banking assistant."
MODEL = "gpt-4o-mini"


class _Early:
    """Something the app made before instrumenting, with a finaliser (as libraries do)."""


_early = _Early()
weakref.finalize(_early, lambda: None)
frictionlens.instrument()

#: what the app still holds when it ends (the open stream)
HELD: list[object] = []
_truth_lock = threading.Lock()


def conversation(client: openai.OpenAI, n: int, corrected: bool, truth, thread: int) -> None:
    history = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{QUESTIONS[n % len(QUESTIONS)]} (case {n})"},
    ]
    for turn in (1, 2):
        reply = client.chat.completions.create(model=MODEL, messages=history)
        call = last_call.get()
        with _truth_lock:
            truth.write(
                json.dumps(
                    {
                        "trace_id": format(call.trace_id, "032x") if call else None,
                        "response_id": reply.id,
                        "conversation": n,
                        "turn": turn,
                        "corrected": corrected,
                        "thread": thread,
                    }
                )
                + "\n"
            )
        history.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
        follow = (
            f"No, I meant the card of account {n}, not the app."
            if corrected
            else f"Thanks. And what about account number {n * 7}?"
        )
        history.append({"role": "user", "content": follow})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("truth")
    parser.add_argument("--conversations", type=int, default=60)
    parser.add_argument("--corrected", type=int, default=15)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--exit", default="return", choices=("return", "sys.exit", "open-stream", "threads")
    )
    args = parser.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    client = openai.OpenAI()
    with open(args.truth, "w", encoding="utf-8") as truth:
        if args.exit == "threads":
            workers = [
                threading.Thread(
                    target=lambda t=t: [
                        conversation(client, n, n < args.corrected, truth, t)
                        for n in range(t, args.conversations, 4)
                    ]
                )
                for t in range(4)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        else:
            for n in range(args.conversations):
                conversation(client, n, n < args.corrected, truth, 0)
    if args.exit == "open-stream":
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Tell me a long story."}],
            stream=True,
        )
        next(iter(stream))
        HELD.append(stream)
    print(f"returned {time.time()}", flush=True)
    if args.exit == "sys.exit":
        sys.exit(0)


if __name__ == "__main__":
    main()
