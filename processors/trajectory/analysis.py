"""What one finished task did with its tools: pure functions over its tool events.

These definitions are the ground truth the labelled scenarios are written against.

*Tool call.* The model requests tool calls in its responses (``CallFeatures.tool_calls``)
and the app may run each one inside an ``execute_tool`` span. A request and the span that
ran it are one call, not two. An ``execute_tool`` span is paired with a still unpaired
request, in end order:

1. with the same call id, when the span has one and a request carries it;
2. otherwise with the oldest unpaired request of the same tool name, unless both carry
   call ids and they differ (then they are different calls).

A request nobody ran in a span, and a span that pairs with no request (a tool the app
called on its own, or a framework whose LLM spans we cannot read), each count as one call.
A span that ends before its request (a tool started while the response still streamed)
is paired when the request arrives, by call id only.

*Tool error.* A call whose ``execute_tool`` span ended with ``error.type`` or an error status.

*Redundant call.* A call with the same tool name and the same arguments hash as an earlier
call of the task, whatever the earlier call's result (retrying an identical failing call is
also redundant: the model changed nothing). Calls whose arguments are unknown (a span with
no request) are never redundant.

*Loop.* The agent goes round the same cycle of calls again: a block of ``k`` consecutive
calls (2 <= k <= ``max_period``, not itself a repetition of a shorter block, so "A, A" is a
redundant call and not a loop) immediately followed by the identical block. Each further
immediate repetition of the block counts one more loop: A,B,A,B is one loop, A,B,A,B,A,B
two, A,B,C,A,B,C one. The scan goes left to right and resumes after the last repetition;
calls compare by (name, arguments hash), and calls with unknown arguments never match.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

ToolEvent = tuple[int, bool, str, "int | None", "str | None", bool]
"""(arrival number, is a model request, tool name, arguments hash, call id, ended in error).
Spans reach the pipeline as they end, so arrival order is end order; sorting restores it
after accumulators of sibling spans were merged."""


@dataclass(slots=True)
class ToolCall:
    """One tool call of a task, after pairing requests with executions."""

    name: str
    args: int | None
    call_id: str | None
    error: bool = False


def pair_tool_calls(events: Iterable[ToolEvent]) -> list[ToolCall]:
    """The task's tool calls in order, requests and ``execute_tool`` spans paired (see module doc)."""
    calls: list[ToolCall] = []
    open_by_name: dict[str, list[int]] = {}
    open_by_id: dict[str, int] = {}
    ran_by_id: dict[str, int] = {}  # spans not paired yet, by call id
    for _seq, requested, name, args, call_id, error in events:
        if requested:
            if call_id is not None and call_id in ran_by_id:
                calls[ran_by_id.pop(call_id)].args = args
                continue
            idx = len(calls)
            calls.append(ToolCall(name, args, call_id))
            open_by_name.setdefault(name, []).append(idx)
            if call_id is not None:
                open_by_id[call_id] = idx
            continue
        idx = _take_request(calls, open_by_name, open_by_id, name, call_id)
        if idx is None:
            calls.append(ToolCall(name, None, call_id, error))
            if call_id is not None:
                ran_by_id[call_id] = len(calls) - 1
        else:
            calls[idx].error = error
    return calls


def _take_request(
    calls: list[ToolCall],
    open_by_name: dict[str, list[int]],
    open_by_id: dict[str, int],
    name: str,
    call_id: str | None,
) -> int | None:
    idx: int | None = None
    if call_id is not None:
        idx = open_by_id.pop(call_id, None)
    if idx is None:
        for i in open_by_name.get(name, ()):
            other = calls[i].call_id
            if call_id is None or other is None:
                idx = i
                if other is not None:
                    del open_by_id[other]
                break
    if idx is not None:
        open_by_name[calls[idx].name].remove(idx)
    return idx


def call_tokens(calls: Sequence[ToolCall]) -> list[Hashable]:
    """Comparable identity of each call; a call with unknown arguments equals no other."""
    return [(c.name, c.args) if c.args is not None else i for i, c in enumerate(calls)]


def count_redundant(calls: Sequence[ToolCall]) -> int:
    seen: set[tuple[str, int]] = set()
    redundant = 0
    for c in calls:
        if c.args is None:
            continue
        key = (c.name, c.args)
        if key in seen:
            redundant += 1
        else:
            seen.add(key)
    return redundant


def count_loops(tokens: Sequence[Hashable], max_period: int = 8) -> int:
    """Immediate repetitions of a cycle of 2..``max_period`` calls (see module doc)."""
    toks = list(tokens)
    n = len(toks)
    loops = 0
    i = 0
    while i < n - 3:
        for k in range(2, min(max_period, (n - i) // 2) + 1):
            block = toks[i : i + k]
            if toks[i + k : i + 2 * k] != block or not _primitive(block):
                continue
            j = i + 2 * k
            loops += 1
            while toks[j : j + k] == block:
                loops += 1
                j += k
            i = j
            break
        else:
            i += 1
    return loops


def _primitive(block: list[Hashable]) -> bool:
    """False when ``block`` is a shorter block repeated (e.g. A,A or A,B,A,B)."""
    k = len(block)
    return not any(k % d == 0 and block == block[:d] * (k // d) for d in range(1, k // 2 + 1))


def over_budget(steps: int, expected: int, margin: float, min_extra: int) -> bool:
    """More steps than the budget allows: above ``expected * (1 + margin)`` and by at least
    ``min_extra`` steps, so one extra call on a small task is normal variation, not brute force."""
    return steps > expected * (1.0 + margin) and steps - expected >= min_extra
