"""An instrumented chat app for the live alerting test; run as ``python -m tests.alerting_app DIR``.

Configured like any deployment, through ``FRICTIONLENS_*`` variables (the test sets the
Prometheus port, a short conversation timeout). It calls a JSON-extraction route through the
real OpenAI SDK and has simulated users chat beside it, without end, from the moment the file
``DIR/start`` appears (so the servers' own start-up does not slow the calls the latency
baselines learn from). It prints ``warm`` once
the route's drift baseline is learned. When the file ``DIR/degrade`` appears, the provider's
JSON route starts answering with a preamble and code fences (as in ``frictionlens demo``)
and users start correcting, rephrasing and regenerating.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import openai

import frictionlens
from frictionlens.demo import BEHAVIOURS, JSON_SYSTEM, QUESTIONS, _Provider, _user
from frictionlens.localserver import LocalLLMServer
from frictionlens.processors.drift.design import FULL_BASELINE as WARMUP

#: JSON calls between two user conversations
USER_EVERY = 16


def main(folder: Path) -> None:
    degrade = folder / "degrade"
    rng = random.Random(3)
    with LocalLLMServer() as server:
        provider = _Provider(change_at=sys.maxsize, seed=3)
        server.responder = provider
        frictionlens.instrument(providers=["openai"])
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test")
        while not (folder / "start").exists():
            time.sleep(0.05)
        degraded = False
        n = 0
        while True:
            n += 1
            client.chat.completions.create(
                model="gpt-test",
                response_format={"type": "json_object"},
                messages=[
                    {"role": "system", "content": JSON_SYSTEM},
                    {"role": "user", "content": f"Order {n}: {rng.choice(QUESTIONS)}"},
                ],
            )
            if n == WARMUP + 32:
                print("warm", flush=True)
            if not degraded and degrade.exists():
                degraded = True
                provider.change_at = provider.json_calls
            if n % USER_EVERY == 0:
                behaviour = rng.choice(BEHAVIOURS[1:4]) if degraded else BEHAVIOURS[0]
                with frictionlens.session(f"user-{n}-{behaviour}"):
                    _user(client, server, behaviour, n, rng)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
