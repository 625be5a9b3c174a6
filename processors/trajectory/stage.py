"""The trajectory stage: how many steps, tool calls, errors and loops each agent task took.

*Tasks.* Every ``invoke_agent`` span is a task, whoever opened it (``frictionlens.task()``
or an agent framework); its name is ``gen_ai.agent.name``. In a trace with no
``invoke_agent`` span at all, the trace root (no parent, or a remote one) is a task when
two or more LLM calls ran under it; its name is the root span's name.

*What a task counts.* Everything that ran under its root span: LLM calls (steps), tool
calls and their errors (see ``analysis``), tokens. A nested agent is its own task, and the
outer task counts its steps and tool calls too: the outer budget is for the whole job.
The ``gen_ai.invoke_agent.*`` metrics follow the conventions' agent grain instead: each
agent invocation records only the calls not made inside a nested agent, so they sum to
the run's total without double counting.

*How spans reach their task.* Children end before their parent, so the stage folds every
finished GenAI span into an accumulator waiting under its parent's span id; when the
parent ends, its accumulator moves up to the grandparent, and so on. An ``invoke_agent``
span (or an implicit root) turns its accumulator into the root's attributes, then passes
it further up for the outer task. Spans that end after their task root, or that arrive
from another process after it (collector), are not counted.

*Outcome.* ``frictionlens.trajectory.outcome`` when the span carries it (``task()`` sets
it); else ``failure`` for an error status or ``error.type``, ``success`` for an OK
status, ``unknown`` otherwise.

*Brute force.* Over budget (``analysis.over_budget``: more than ``budget_margin`` above
the declared or learned budget and at least ``budget_min_extra_steps`` extra steps), or
any redundant call, or any loop.

*Bounds.* At most ``max_open_traces`` traces with pending accumulators (least recently
updated dropped first); a trace is dropped when its local root ends, or after
``trace_timeout_s`` without a new span. Per accumulator at most ``max_events_per_task``
tool events (more are counted as plain tool calls, with no pairing, redundancy or loops).
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from frictionlens import semconv
from frictionlens.health import count_eviction
from frictionlens.processors.pipeline import Emit, SpanRecord, span_attributes
from frictionlens.processors.trajectory.analysis import (
    ToolEvent,
    call_tokens,
    count_loops,
    count_redundant,
    over_budget,
    pair_tool_calls,
)
from frictionlens.processors.trajectory.history import TaskHistory

_OUTCOMES = frozenset(
    {
        semconv.TRAJECTORY_OUTCOME_SUCCESS,
        semconv.TRAJECTORY_OUTCOME_FAILURE,
        semconv.TRAJECTORY_OUTCOME_ABANDONED,
        semconv.TRAJECTORY_OUTCOME_UNKNOWN,
    }
)
_LLM = semconv.LLM_OPERATIONS
#: open parent spans with pending accumulators, per trace
_MAX_PENDING_PER_TRACE = 1024


class _Acc:
    """What ended under one span so far."""

    __slots__ = (
        "steps",
        "step_errors",
        "input_tokens",
        "output_tokens",
        "events",
        "dropped",
        "agents",
        "nested_steps",
        "nested_tool_calls",
    )

    def __init__(self) -> None:
        self.steps = 0
        self.step_errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.events: list[ToolEvent] = []
        self.dropped = 0  # tool events beyond the cap
        self.agents = 0  # invoke_agent spans folded in
        self.nested_steps = 0  # of those, counted by nested agents (agent-grain metrics)
        self.nested_tool_calls = 0

    def add_event(self, event: ToolEvent, cap: int) -> None:
        if len(self.events) < cap:
            self.events.append(event)
        else:
            self.dropped += 1

    def merge(self, other: _Acc, cap: int) -> None:
        self.steps += other.steps
        self.step_errors += other.step_errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.agents += other.agents
        self.nested_steps += other.nested_steps
        self.nested_tool_calls += other.nested_tool_calls
        self.dropped += other.dropped
        big, small = (
            (self.events, other.events)
            if len(self.events) >= len(other.events)
            else (other.events, self.events)
        )
        room = cap - len(big)
        big.extend(small[:room])
        self.dropped += max(0, len(small) - room)
        self.events = big


class _Trace:
    __slots__ = ("pending", "updated_ns")

    def __init__(self) -> None:
        self.pending: dict[int, _Acc] = {}
        self.updated_ns = 0


class TrajectoryStage:
    """Pipeline stage enriching task root spans with their trajectory (see module doc)."""

    def __init__(
        self,
        *,
        budget_margin: float = 0.25,
        budget_min_extra_steps: int = 2,
        max_loop_period: int = 8,
        trace_timeout_s: float = 1800.0,
        max_open_traces: int = 10_000,
        max_events_per_task: int = 4096,
        history: TaskHistory | None = None,
        meter: metrics.Meter | None = None,
    ) -> None:
        self.budget_margin = budget_margin
        self.budget_min_extra_steps = budget_min_extra_steps
        self.max_loop_period = max_loop_period
        self.trace_timeout_ns = int(trace_timeout_s * 1e9)
        self.max_open_traces = max_open_traces
        self.max_events_per_task = max_events_per_task
        self.history = history if history is not None else TaskHistory()
        self._traces: OrderedDict[int, _Trace] = OrderedDict()
        self._seq = itertools.count()
        meter = meter if meter is not None else metrics.get_meter(semconv.SCOPE_NAME)
        self._steps = meter.create_histogram(
            semconv.METRIC_TRAJECTORY_STEPS,
            unit="{step}",
            description="LLM calls per agent task",
            explicit_bucket_boundaries_advisory=semconv.TRAJECTORY_STEP_BUCKETS,
        )
        self._efficiency = meter.create_histogram(
            semconv.METRIC_TRAJECTORY_EFFICIENCY,
            unit="1",
            description="Step budget / steps taken per agent task",
            explicit_bucket_boundaries_advisory=semconv.TRAJECTORY_EFFICIENCY_BUCKETS,
        )
        self._outcomes = meter.create_counter(
            semconv.METRIC_TRAJECTORY_OUTCOMES,
            unit="{task}",
            description="Finished agent tasks by outcome",
        )
        self._inference_calls = meter.create_histogram(
            semconv.METRIC_GEN_AI_INVOKE_AGENT_INFERENCE_CALLS,
            unit="{inference_call}",
            description="Inference calls made by one agent invocation",
            explicit_bucket_boundaries_advisory=semconv.TRAJECTORY_STEP_BUCKETS,
        )
        self._tool_calls = meter.create_histogram(
            semconv.METRIC_GEN_AI_INVOKE_AGENT_TOOL_CALLS,
            unit="{tool_call}",
            description="Tool calls made by one agent invocation",
            explicit_bucket_boundaries_advisory=semconv.TRAJECTORY_STEP_BUCKETS,
        )
        # read from the history at collection time: nothing to record per task
        meter.create_observable_gauge(
            semconv.METRIC_TRAJECTORY_STEP_SUCCESS_RATE,
            callbacks=[self._observe_step_rates],
            unit="1",
            description="Recent share of a task's LLM and tool calls without error",
        )
        meter.create_observable_gauge(
            semconv.METRIC_TRAJECTORY_TASK_SUCCESS_RATE,
            callbacks=[self._observe_task_rates],
            unit="1",
            description="Recent share of a task's runs that succeeded end to end",
        )

    # -- Stage -----------------------------------------------------------------------------
    def process(self, record: SpanRecord, emit: Emit) -> None:
        span = record.span
        ctx = span.context
        if ctx is None:
            return
        attrs = span_attributes(span)
        op = attrs.get(semconv.GEN_AI_OPERATION_NAME)
        traces = self._traces
        tid = ctx.trace_id
        tr = traces.get(tid)
        if tr is None:
            if op is None:
                return  # nothing GenAI ended in this trace so far, and this span is not either
            mine = None
        else:
            mine = tr.pending.pop(ctx.span_id, None) if tr.pending else None
        if op == semconv.OP_INVOKE_AGENT:
            mine = mine if mine is not None else _Acc()
            self._finish(record, mine, attrs, agent=True)
        elif op not in _LLM and op != semconv.OP_EXECUTE_TOOL:
            op = None
            if mine is None:  # a span with no GenAI under it
                if tr is not None and not tr.pending and _is_local_root(span):
                    del traces[tid]
                return
        parent = span.parent
        if parent is None or parent.is_remote:
            if op in _LLM or op == semconv.OP_EXECUTE_TOOL:
                mine = mine if mine is not None else _Acc()
                self._add_own(mine, op, record, attrs)
            if (
                op != semconv.OP_INVOKE_AGENT
                and mine is not None
                and not mine.agents
                and mine.steps >= 2
            ):
                self._finish(record, mine, attrs, agent=False)
            if tr is not None and not tr.pending:
                del traces[tid]
            return
        # fold this span (and what ended under it) into its parent's accumulator
        if tr is None:
            tr = traces[tid] = _Trace()
            while len(traces) > self.max_open_traces:
                traces.popitem(last=False)
                count_eviction("traces", semconv.EVICTED_CAP)
        else:
            traces.move_to_end(tid)
        tr.updated_ns = time.time_ns()
        pending = tr.pending
        target = pending.get(parent.span_id)
        if target is None:
            if len(pending) >= _MAX_PENDING_PER_TRACE:
                return
            target = pending[parent.span_id] = mine if mine is not None else _Acc()
        elif mine is not None:
            target.merge(mine, self.max_events_per_task)
        if op is not None and op != semconv.OP_INVOKE_AGENT:
            self._add_own(target, op, record, attrs)

    def tick(self, now_ns: int, emit: Emit) -> None:
        limit = now_ns - self.trace_timeout_ns
        traces = self._traces
        while traces:
            tid, tr = next(iter(traces.items()))
            if tr.updated_ns >= limit:
                break
            del traces[tid]
            count_eviction("traces", semconv.EVICTED_TTL)

    def close(self, emit: Emit) -> None:
        self._traces.clear()

    # -- persistence and introspection -----------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Learned budgets and compounding rates, to persist beside the drift baselines."""
        return self.history.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history.load_state_dict(state)

    def _observe_step_rates(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(r.step_success, {semconv.METRIC_ATTR_TASK: name})
            for name, r in self.history.snapshot().items()
            if r.step_success is not None
        ]

    def _observe_task_rates(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(r.task_success, {semconv.METRIC_ATTR_TASK: name})
            for name, r in self.history.snapshot().items()
            if r.task_success is not None
        ]

    @property
    def open_traces(self) -> int:
        """Traces with GenAI spans whose task root has not ended yet."""
        return len(self._traces)

    # -- accumulation ----------------------------------------------------------------------
    def _add_own(self, acc: _Acc, op: str, record: SpanRecord, attrs: Mapping[str, Any]) -> None:
        """Add an LLM call or a tool run itself to ``acc``."""
        span = record.span
        error = (
            attrs.get(semconv.ERROR_TYPE) is not None or span.status.status_code is StatusCode.ERROR
        )
        cap = self.max_events_per_task
        if op == semconv.OP_EXECUTE_TOOL:
            call_id = attrs.get(semconv.GEN_AI_TOOL_CALL_ID)
            name = attrs.get(semconv.GEN_AI_TOOL_NAME) or span.name
            acc.add_event(
                (
                    next(self._seq),
                    False,
                    str(name),
                    None,
                    None if call_id is None else str(call_id),
                    error,
                ),
                cap,
            )
            return
        acc.steps += 1
        acc.step_errors += error
        tokens = attrs.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)
        if type(tokens) is int:
            acc.input_tokens += tokens
        tokens = attrs.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
        if type(tokens) is int:
            acc.output_tokens += tokens
        feats = record.features
        if feats is None or not feats.tool_calls:
            return
        ids = feats.tool_call_ids
        seq = self._seq
        for i, (name, digest) in enumerate(feats.tool_calls):
            acc.add_event(
                (next(seq), True, name, digest, ids[i] if i < len(ids) else None, False), cap
            )

    # -- the task root -----------------------------------------------------------------------
    def _finish(
        self, record: SpanRecord, acc: _Acc, attrs: Mapping[str, Any], *, agent: bool
    ) -> None:
        span = record.span
        acc.events.sort()
        calls = pair_tool_calls(acc.events)
        tool_calls = len(calls) + acc.dropped
        tool_errors = sum(1 for c in calls if c.error)
        redundant = count_redundant(calls)
        loops = count_loops(call_tokens(calls), self.max_loop_period)
        name = str(attrs.get(semconv.GEN_AI_AGENT_NAME) or span.name) if agent else span.name
        outcome = _outcome(record, attrs)
        declared = _get(record, attrs, semconv.TRAJECTORY_EXPECTED_STEPS)
        if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
            expected: int | None = declared
            source = semconv.TRAJECTORY_BUDGET_DECLARED
        else:
            expected = self.history.budget(name)
            source = semconv.TRAJECTORY_BUDGET_LEARNED
        step_total = acc.steps + tool_calls
        rates = self.history.record(
            name,
            steps=acc.steps,
            step_ok=step_total - acc.step_errors - tool_errors,
            step_total=step_total,
            outcome=outcome,
        )
        efficiency = expected / acc.steps if expected is not None and acc.steps else None
        over = expected is not None and over_budget(
            acc.steps, expected, self.budget_margin, self.budget_min_extra_steps
        )
        brute_force = over or redundant > 0 or loops > 0

        record.set(semconv.TRAJECTORY_TASK, name)
        record.set(semconv.TRAJECTORY_STEPS, acc.steps)
        record.set(semconv.TRAJECTORY_TOOL_CALLS, tool_calls)
        record.set(semconv.TRAJECTORY_TOOL_ERRORS, tool_errors)
        record.set(semconv.TRAJECTORY_REDUNDANT_CALLS, redundant)
        record.set(semconv.TRAJECTORY_LOOPS, loops)
        record.set(semconv.TRAJECTORY_OUTCOME, outcome)
        record.set(semconv.TRAJECTORY_BRUTE_FORCE, brute_force)
        record.set(semconv.TRAJECTORY_INPUT_TOKENS, acc.input_tokens)
        record.set(semconv.TRAJECTORY_OUTPUT_TOKENS, acc.output_tokens)
        record.set(semconv.TRAJECTORY_COMPOUNDING, rates.compounding)
        if expected is not None:
            record.set(semconv.TRAJECTORY_EXPECTED_STEPS, expected)
            record.set(semconv.TRAJECTORY_BUDGET_SOURCE, source)
        if efficiency is not None:
            record.set(semconv.TRAJECTORY_EFFICIENCY, efficiency)
        if span.start_time and span.end_time:
            record.set(semconv.TRAJECTORY_DURATION, (span.end_time - span.start_time) / 1e9)
        if rates.step_success is not None:
            record.set(semconv.TRAJECTORY_STEP_SUCCESS_RATE, rates.step_success)
        if rates.task_success is not None:
            record.set(semconv.TRAJECTORY_TASK_SUCCESS_RATE, rates.task_success)
        event: dict[str, Any] = {
            semconv.GEN_AI_EVALUATION_NAME: semconv.EVALUATION_TRAJECTORY,
            semconv.GEN_AI_EVALUATION_SCORE_LABEL: semconv.TRAJECTORY_LABEL_BRUTE_FORCE
            if brute_force
            else outcome,
            semconv.GEN_AI_EVALUATION_EXPLANATION: (
                f"{acc.steps} steps (budget {expected if expected is not None else 'none'}), {tool_calls} tool calls, "
                f"{tool_errors} tool errors, {redundant} redundant, {loops} loops"
            ),
        }
        if efficiency is not None:
            event[semconv.GEN_AI_EVALUATION_SCORE_VALUE] = efficiency
        record.add_event(semconv.GEN_AI_EVALUATION_RESULT, event)

        task_attrs = {semconv.METRIC_ATTR_TASK: name, semconv.METRIC_ATTR_OUTCOME: outcome}
        self._steps.record(acc.steps, task_attrs)
        if efficiency is not None:
            self._efficiency.record(efficiency, task_attrs)
        self._outcomes.add(
            1, {**task_attrs, semconv.METRIC_ATTR_BRUTE_FORCE: "true" if brute_force else "false"}
        )
        if agent:
            self._record_agent_grain(record, attrs, acc, name, tool_calls)

    def _record_agent_grain(
        self,
        record: SpanRecord,
        span_attrs: Mapping[str, Any],
        acc: _Acc,
        name: str,
        tool_calls: int,
    ) -> None:
        """The conventions' per-invocation counts, without the nested agents' calls; then
        mark this agent's totals as nested for the enclosing one."""
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
            semconv.GEN_AI_AGENT_NAME: name,
        }
        for key in (semconv.GEN_AI_PROVIDER_NAME, semconv.ERROR_TYPE):
            value = _get(record, span_attrs, key)
            if value is not None:
                attrs[key] = value
        self._inference_calls.record(max(0, acc.steps - acc.nested_steps), attrs)
        self._tool_calls.record(max(0, tool_calls - acc.nested_tool_calls), attrs)
        acc.nested_steps = acc.steps
        acc.nested_tool_calls = tool_calls
        acc.agents += 1


def _is_local_root(span: ReadableSpan) -> bool:
    parent = span.parent
    return parent is None or parent.is_remote


def _get(record: SpanRecord, attrs: Mapping[str, Any], key: str) -> Any:
    """``record.get`` (what earlier stages added, then the span's own) on the fast mapping."""
    value = record.attributes.get(key)
    return value if value is not None else attrs.get(key)


def _outcome(record: SpanRecord, attrs: Mapping[str, Any]) -> str:
    declared = _get(record, attrs, semconv.TRAJECTORY_OUTCOME)
    if declared in _OUTCOMES:
        return str(declared)
    status = record.span.status.status_code
    if status is StatusCode.ERROR or _get(record, attrs, semconv.ERROR_TYPE) is not None:
        return semconv.TRAJECTORY_OUTCOME_FAILURE
    if status is StatusCode.OK:
        return semconv.TRAJECTORY_OUTCOME_SUCCESS
    return semconv.TRAJECTORY_OUTCOME_UNKNOWN
