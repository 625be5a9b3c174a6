"""Races: many threads and asyncio tasks calling at once give the signals a sequential run gives.

The same conversations (given sessions and inferred ones, with retries, corrections and
rephrasings) and agent tasks (tool calls, a redundant repeat) run once one after another and
once all at once: threads with the sync SDK and asyncio tasks with the async SDK, together.
Per conversation the friction kinds, review flags and turn numbers of every call, the
conversation summaries, and per task the trajectory counts must be identical.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import frictionlens
from frictionlens import health
from frictionlens import semconv as sc
from frictionlens.localserver import LocalLLMServer

CONVERSATIONS = 32
TASKS = 12
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def turns(i: int) -> list[list[str]]:
    """The user turns of conversation ``i``; a turn of two messages is sent, then resent."""
    topic = ["my invoice", "the VPN client", "a refund", "the mobile app"][i % 4] + f" (case {i})"
    first = f"How do I fix a problem with {topic}?"
    return [
        [[first], ["Thanks, that helped."]],  # smooth
        [[first, first]],  # regenerate: the same request again
        [[first], [f"No, I meant {topic} on my phone, not the website."]],  # correction
        [[first], [f"What is the way to fix a problem with {topic}?"]],  # rephrase
    ][i % 4]


def requests(i: int, answers: list[str]) -> Iterator[list[dict[str, str]]]:
    """The requests of conversation ``i``; each turn's history holds the answer last appended."""
    history: list[dict[str, str]] = []
    for turn in turns(i):
        for attempt, text in enumerate(turn):
            sent = history + [{"role": "user", "content": text}]
            yield sent
            if attempt == len(turn) - 1:
                history = sent + [{"role": "assistant", "content": answers[-1]}]


def _session(i: int) -> Any:
    """Odd conversations run in a session; even ones are inferred from their history."""
    return frictionlens.session(f"s-{i}") if i % 2 else contextlib.nullcontext()


def converse_sync(client: openai.OpenAI, i: int) -> None:
    answers: list[str] = []
    with _session(i):
        for sent in requests(i, answers):
            answers.append(
                client.chat.completions.create(model="m", messages=sent).choices[0].message.content
            )


async def converse_async(client: openai.AsyncOpenAI, i: int) -> None:
    answers: list[str] = []
    with _session(i):
        for sent in requests(i, answers):
            answers.append(
                (await client.chat.completions.create(model="m", messages=sent))
                .choices[0]
                .message.content
            )


def agent(client: openai.OpenAI, j: int) -> None:
    with frictionlens.task(f"agent-{j}", expected_steps=2):
        msgs: list[Any] = [{"role": "user", "content": f"Look up order {j}"}]
        for _ in range(1 + j % 2):  # odd tasks repeat the identical tool call: redundant
            call = (
                client.chat.completions.create(model="m", messages=msgs, tools=TOOLS)
                .choices[0]
                .message.tool_calls[0]
            )
            with frictionlens.tool("lookup", call_id=call.id):
                pass
        msgs += [
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": f"order {j} shipped"},
        ]
        client.chat.completions.create(model="m", messages=msgs, tools=TOOLS)


def _base(conversation_id: Any) -> str:
    """An inferred id without its ``.N`` suffix: N numbers conversations that open alike in
    arrival order, which concurrency legitimately changes."""
    text = str(conversation_id)
    return text.rsplit(".", 1)[0] if text.startswith("i-") else text


def signals(exporter: InMemorySpanExporter) -> dict[str, Any]:
    calls: dict[str, list[tuple]] = {}
    summaries: dict[str, list[Any]] = {}
    tasks = {}
    for span in sorted(exporter.get_finished_spans(), key=lambda s: s.start_time):
        a = dict(span.attributes or {})
        if span.name == sc.CONVERSATION_SPAN:
            summary = sorted(
                (k, v)
                for k, v in a.items()
                if k not in (sc.CONVERSATION_END_REASON, sc.CONVERSATION_ID)
            )
            summaries.setdefault(_base(a[sc.CONVERSATION_ID]), []).append(summary)
        elif span.name.startswith("invoke_agent"):
            tasks[span.name] = {
                k: v
                for k, v in a.items()
                if k.startswith("frictionlens.trajectory.")
                and k
                not in (
                    sc.TRAJECTORY_DURATION,
                    sc.TRAJECTORY_STEP_SUCCESS_RATE,
                    sc.TRAJECTORY_TASK_SUCCESS_RATE,
                    sc.TRAJECTORY_COMPOUNDING,
                )
            }
        elif span.name.startswith("chat "):
            calls.setdefault(str(a.get(sc.CONVERSATION_ID)), []).append(
                (
                    a.get(sc.CONVERSATION_TURN),
                    a.get(sc.FRICTION_KIND),
                    a.get(sc.FRICTION_CATEGORY),
                    a.get(sc.REVIEW_NEEDED),
                )
            )
    by_base: dict[str, list[list[tuple]]] = {}
    for key, found in calls.items():
        by_base.setdefault(_base(key), []).append(found)
    return {
        "calls": {k: sorted(v) for k, v in by_base.items()},
        "summaries": {k: sorted(v) for k, v in summaries.items()},
        "tasks": tasks,
    }


@pytest.fixture(scope="module")
def server():
    with LocalLLMServer() as srv:  # the default responder answers from the question alone
        yield srv


def run(server: LocalLLMServer, concurrently: bool) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    frictionlens.instrument(
        tracer_provider=tp,
        meter_provider=MeterProvider(),
        providers=["openai"],
        salt="fixed: sketches, so rephrase detection, depend on the salt",
    )
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    sync_ids = [i for i in range(CONVERSATIONS) if i % 3 != 2]
    async_ids = [i for i in range(CONVERSATIONS) if i % 3 == 2]

    async def async_part(gather: bool) -> None:
        async with openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key="k", max_retries=0
        ) as aclient:
            if gather:
                await asyncio.gather(*(converse_async(aclient, i) for i in async_ids))
            else:
                for i in async_ids:
                    await converse_async(aclient, i)

    if concurrently:
        looping = threading.Thread(target=lambda: asyncio.run(async_part(True)))
        looping.start()
        with ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(converse_sync, client, i) for i in sync_ids]
            jobs += [pool.submit(agent, client, j) for j in range(TASKS)]
            for job in jobs:
                job.result()
        looping.join()
    else:
        for i in sync_ids:
            converse_sync(client, i)
        for j in range(TASKS):
            agent(client, j)
        asyncio.run(async_part(False))
    frictionlens.uninstrument()  # closes every conversation: summaries
    return signals(exporter)


def test_concurrent_calls_give_the_signals_of_a_sequential_run(server):
    errors_before = sum(health.internal_errors().values())
    sequential = run(server, concurrently=False)
    concurrent = run(server, concurrently=True)
    assert len(sequential["calls"]) >= CONVERSATIONS and len(sequential["tasks"]) == TASKS
    assert set(sequential["summaries"]) == set(sequential["calls"]) - {"None"}
    kinds = {
        call[1] for convos in sequential["calls"].values() for convo in convos for call in convo
    }
    assert {
        None,
        "regenerate",
        "correction",
        "rephrase",
    } <= kinds  # the run exercises the detectors
    assert any(t[sc.TRAJECTORY_REDUNDANT_CALLS] for t in sequential["tasks"].values())
    for part in ("calls", "summaries", "tasks"):
        assert concurrent[part] == sequential[part], part
    assert sum(health.internal_errors().values()) == errors_before
