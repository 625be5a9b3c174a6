"""``frictionlens demo``: a scripted LLM app, instrumented, with friction, drift and a brute-forcing agent.

Everything runs in-process: a local server speaking the OpenAI wire format plays the
provider (its JSON route silently changes fingerprint mid-run and starts wrapping JSON in a
preamble and code fences), simulated users chat through the real OpenAI SDK (most happy;
some regenerate, correct, rephrase, give up or stop a stream), and an agent runs efficient
and brute-force tasks. The ground truth is returned so tests can check the report against it.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import frictionlens
from frictionlens.localserver import LocalLLMServer, ReceivedRequest, Reply, default_responder

JSON_SYSTEM = "Extract the order from the customer's message as JSON."
CHAT_SYSTEM = "You are the support assistant of a bank. Answer briefly."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look an order up",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }
]
QUESTIONS = [
    "How do I activate my new card?",
    "What is the fee for a transfer abroad?",
    "Can I change my PIN in the app?",
    "Why was my payment declined yesterday?",
    "How long does a bank transfer take?",
    "Where can I see my statements?",
    "Can I get a refund for a card payment?",
    "How do I close my savings account?",
]
FOLLOW_UPS = [
    "Thanks, and is there a limit?",
    "Does that also work from abroad?",
    "Great. How much does it cost?",
]
#: what a user who rephrases got first: an answer that failed the question
NON_ANSWER = "Thanks for reaching out! We are always happy to help with your banking needs."
REPHRASES = {
    "How do I activate my new card?": "How can I activate the new card I got?",
    "What is the fee for a transfer abroad?": "What fee do you charge for a transfer abroad?",
}
#: the demo exports metrics this often (ms) so the drift-score gauge has a timeline to chart
METRIC_EXPORT_INTERVAL_MS = "100"
BEHAVIOURS = ("happy", "regenerate", "correction", "rephrase", "give_up", "stream_abandon")


@dataclass
class GroundTruth:
    """What the demo scripted, for checking the report against."""

    flagged_conversations: set[str] = field(default_factory=set)
    happy_conversations: set[str] = field(default_factory=set)
    drift_route_change_at: int = 0
    brute_force_tasks: int = 0
    efficient_tasks: int = 0


class _Provider:
    """The provider's behaviour: its JSON route changes after ``change_at`` calls."""

    def __init__(self, change_at: int, seed: int) -> None:
        self.change_at = change_at
        self.json_calls = 0
        self.rng = random.Random(seed)

    def __call__(self, req: ReceivedRequest) -> Reply:
        msgs = req.json.get("messages") or []
        if msgs and msgs[0].get("content") == JSON_SYSTEM:
            self.json_calls += 1
            order = {
                "order_id": f"A{self.rng.randrange(10_000)}",
                "status": self.rng.choice(["paid", "shipped", "open"]),
                "items": [f"item-{i}" for i in range(self.rng.randint(1, 6))],
            }
            if self.json_calls <= self.change_at:
                return Reply(content=json.dumps(order), system_fingerprint="fp_2026a")
            body = json.dumps(order, indent=2)
            return Reply(
                content=f"Sure! Here is the JSON for the order:\n```json\n{body}\n```",
                system_fingerprint="fp_2026b",
                model="gpt-demo-2026-11",
            )
        return default_responder(req)


def _user(client: Any, server: LocalLLMServer, behaviour: str, i: int, rng: random.Random) -> None:
    question = (
        QUESTIONS[i % len(QUESTIONS)] if behaviour != "rephrase" else rng.choice(list(REPHRASES))
    )
    history: list[dict[str, str]] = [
        {"role": "system", "content": CHAT_SYSTEM},
        {"role": "user", "content": question},
    ]

    def ask(stream: bool = False) -> str:
        if stream:
            s = client.chat.completions.create(model="gpt-demo", messages=history, stream=True)
            next(iter(s))
            s.close()
            return ""
        return (
            client.chat.completions.create(model="gpt-demo", messages=history)
            .choices[0]
            .message.content
            or ""
        )

    if behaviour == "stream_abandon":
        ask(stream=True)
        return
    if behaviour == "rephrase":  # users restate what an answer failed to address
        server.script(Reply(content=NON_ANSWER))
    answer = ask()
    if behaviour == "regenerate":
        answer = ask()
    history.append({"role": "assistant", "content": answer})
    second = {
        "happy": FOLLOW_UPS[i % len(FOLLOW_UPS)],
        "correction": "No, I meant my credit card, not the debit card.",
        "rephrase": REPHRASES.get(question, question),
        "give_up": "Forget it, I'll ask a human.",
    }.get(behaviour)
    if second:
        history.append({"role": "user", "content": second})
        history.append({"role": "assistant", "content": ask()})


def _agent(client: Any, server: LocalLLMServer, brute_force: bool) -> None:
    with frictionlens.task("lookup_order", expected_steps=2):
        calls = [Reply(tool_calls=[("get_order", '{"id": "A1"}')])] * (4 if brute_force else 1)
        server.script(*calls)
        messages: list[Any] = [{"role": "user", "content": "Where is my order A1?"}]
        for _ in range(6):
            reply = client.chat.completions.create(model="gpt-demo", messages=messages, tools=TOOLS)
            msg = reply.choices[0].message
            if not msg.tool_calls:
                return
            messages.append(msg.model_dump(exclude_none=True))
            for call in msg.tool_calls:
                with frictionlens.tool(call.function.name, call_id=call.id):
                    result = {"id": "A1", "status": "shipped"}
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
                )


@contextmanager
def _env_default(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` unless the user set it, for the duration of the block."""
    given = os.environ.get(name)
    os.environ[name] = given or value
    try:
        yield
    finally:
        if given is None:
            os.environ.pop(name, None)


def plan(calls: int, seed: int) -> tuple[list[tuple[str, str]], int, int]:
    """The workload: (kind, detail) steps, the JSON route's size and its change point."""
    rng = random.Random(seed)
    json_calls = max(calls * 3 // 4, 700)
    change_at = int(json_calls * 0.8)
    users = max(calls // 20, 12)
    steps: list[tuple[str, str]] = [("json", "")] * json_calls
    steps += [
        ("user", BEHAVIOURS[0] if rng.random() < 0.6 else rng.choice(BEHAVIOURS[1:]))
        for _ in range(users)
    ]
    steps += [("agent", "brute" if k % 3 == 0 else "efficient") for k in range(6)]
    # users and agents interleave with the JSON route over the whole run; the provider counts
    # its own JSON calls, so its change still comes after change_at of them
    rng.shuffle(steps)
    return steps, json_calls, change_at


def run(
    out: Path,
    *,
    calls: int = 900,
    seed: int = 7,
    progress: Callable[[Iterator[Any], int], Iterator[Any]] | None = None,
) -> GroundTruth:
    import openai

    truth = GroundTruth()
    steps, _, change_at = plan(calls, seed)
    truth.drift_route_change_at = change_at
    rng = random.Random(seed + 1)
    with (
        _env_default("OTEL_METRIC_EXPORT_INTERVAL", METRIC_EXPORT_INTERVAL_MS),
        LocalLLMServer() as server,
    ):
        provider = _Provider(change_at, seed)
        server.responder = provider
        frictionlens.instrument(
            data_dir=out,
            exporter="file",
            sample_rate=1.0,
            salt=f"demo-{seed}",
            providers=["openai"],
        )
        try:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="demo")
            user_no = json_no = 0
            iterator = progress(iter(steps), len(steps)) if progress else iter(steps)
            for kind, detail in iterator:
                if kind == "json":
                    json_no += 1
                    client.chat.completions.create(
                        model="gpt-demo",
                        response_format={"type": "json_object"},
                        messages=[
                            {"role": "system", "content": JSON_SYSTEM},
                            {
                                "role": "user",
                                "content": f"Order {json_no:05d}: {rng.choice(QUESTIONS)}",
                            },
                        ],
                    )
                elif kind == "user":
                    user_no += 1
                    cid = f"user-{user_no:03d}-{detail}"
                    (
                        truth.happy_conversations
                        if detail == "happy"
                        else truth.flagged_conversations
                    ).add(cid)
                    with frictionlens.session(cid):
                        _user(client, server, detail, user_no, rng)
                else:
                    with frictionlens.session(
                        f"agent-{truth.brute_force_tasks + truth.efficient_tasks:03d}"
                    ):
                        _agent(client, server, detail == "brute")
                    if detail == "brute":
                        truth.brute_force_tasks += 1
                    else:
                        truth.efficient_tasks += 1
        finally:
            frictionlens.uninstrument()
    return truth


__all__ = ["GroundTruth", "plan", "run"]
