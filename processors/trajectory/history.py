"""What frictionlens remembers per task name: learned step budgets and compounding rates.

*Learned budget.* A task with no declared ``expected_steps`` is held to the median step
count (rounded up) of the last ``budget_window`` successful runs of the same task name,
once at least ``min_budget_runs`` of them were seen. The median ignores the odd
brute-force success, so a budget creeps up only when most successful runs got longer.
A run never counts towards its own budget.

*Compounding.* A task is a chain: at 0.95 success per step, a 10-step chain succeeds end
to end only ~0.60 of the time. Per task name we track two rates, each as a fast
(``fast_alpha``, about the last 1/alpha tasks) and a slow (``slow_alpha``) exponentially
weighted average; until a task name has 1/alpha tasks, the average is the plain mean.

* per-step success: steps (LLM calls and tool calls) without error / steps;
* end-to-end success: tasks that ended ``success`` / tasks that ended ``success``,
  ``failure`` or ``abandoned`` (``unknown`` outcomes are left out).

The task is flagged *compounding* when, after ``min_tasks`` tasks with a known outcome,
the recent end-to-end rate has fallen at least ``drop`` below the slow one while the
recent per-step rate has not fallen more than ``step_tolerance`` below its slow one:
the chain fails more often although its steps do not, i.e. the tasks got longer or the
failure is in how steps combine, which per-step dashboards cannot show.

Memory: at most ``max_names`` task names (least recently seen dropped first), each with
``budget_window`` integers and a dozen floats.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from frictionlens import semconv
from frictionlens.health import count_eviction

_STATE_VERSION = 1
_E2E_OUTCOMES = frozenset(
    {
        semconv.TRAJECTORY_OUTCOME_SUCCESS,
        semconv.TRAJECTORY_OUTCOME_FAILURE,
        semconv.TRAJECTORY_OUTCOME_ABANDONED,
    }
)


@dataclass(frozen=True, slots=True)
class Rates:
    """A task name's recent rates after one more task (None until there is data)."""

    step_success: float | None
    task_success: float | None
    compounding: bool


@dataclass(slots=True)
class _Name:
    budget_runs: deque[int]
    tasks: int = 0  # tasks with a known outcome
    task_fast: float = 0.0
    task_slow: float = 0.0
    step_tasks: int = 0  # tasks with at least one step
    ok_fast: float = 0.0
    n_fast: float = 0.0
    ok_slow: float = 0.0
    n_slow: float = 0.0


_FLOATS = ("task_fast", "task_slow", "ok_fast", "n_fast", "ok_slow", "n_slow")


def _ewma(prev: float, value: float, count: int, alpha: float) -> float:
    return prev + max(alpha, 1.0 / count) * (value - prev)


class TaskHistory:
    """Per-task-name budgets and rates; thread-safe, bounded, persistable as a plain dict."""

    def __init__(
        self,
        *,
        max_names: int = 512,
        budget_window: int = 50,
        min_budget_runs: int = 10,
        fast_alpha: float = 0.02,
        slow_alpha: float = 0.002,
        min_tasks: int = 100,
        drop: float = 0.10,
        step_tolerance: float = 0.02,
    ) -> None:
        self.max_names = max_names
        self.budget_window = budget_window
        self.min_budget_runs = min_budget_runs
        self.fast_alpha = fast_alpha
        self.slow_alpha = slow_alpha
        self.min_tasks = min_tasks
        self.drop = drop
        self.step_tolerance = step_tolerance
        self._names: OrderedDict[str, _Name] = OrderedDict()
        self._lock = threading.Lock()

    def budget(self, name: str) -> int | None:
        """The learned step budget of ``name``, or None while too few successful runs were seen."""
        with self._lock:
            entry = self._names.get(name)
            if entry is None or len(entry.budget_runs) < self.min_budget_runs:
                return None
            runs = sorted(entry.budget_runs)
        mid = len(runs) // 2
        median = runs[mid] if len(runs) % 2 else (runs[mid - 1] + runs[mid]) / 2
        return max(1, math.ceil(median))

    def record(
        self, name: str, *, steps: int, step_ok: int, step_total: int, outcome: str
    ) -> Rates:
        """Add one finished task: ``steps`` (LLM calls) feed the budget when it succeeded;
        ``step_ok`` of ``step_total`` LLM and tool calls had no error."""
        with self._lock:
            entry = self._entry(name)
            if outcome == semconv.TRAJECTORY_OUTCOME_SUCCESS:
                entry.budget_runs.append(steps)
            if step_total > 0:
                entry.step_tasks += 1
                n = entry.step_tasks
                entry.ok_fast = _ewma(entry.ok_fast, step_ok, n, self.fast_alpha)
                entry.n_fast = _ewma(entry.n_fast, step_total, n, self.fast_alpha)
                entry.ok_slow = _ewma(entry.ok_slow, step_ok, n, self.slow_alpha)
                entry.n_slow = _ewma(entry.n_slow, step_total, n, self.slow_alpha)
            if outcome in _E2E_OUTCOMES:
                entry.tasks += 1
                won = 1.0 if outcome == semconv.TRAJECTORY_OUTCOME_SUCCESS else 0.0
                entry.task_fast = _ewma(entry.task_fast, won, entry.tasks, self.fast_alpha)
                entry.task_slow = _ewma(entry.task_slow, won, entry.tasks, self.slow_alpha)
            return self._rates(entry)

    def snapshot(self) -> dict[str, Rates]:
        """Current rates of every task name (for the gauges)."""
        with self._lock:
            return {name: self._rates(e) for name, e in self._names.items()}

    def _rates(self, e: _Name) -> Rates:
        step_fast = e.ok_fast / e.n_fast if e.step_tasks and e.n_fast > 0 else None
        step_slow = e.ok_slow / e.n_slow if e.step_tasks and e.n_slow > 0 else None
        task_fast = e.task_fast if e.tasks else None
        compounding = (
            e.tasks >= self.min_tasks
            and step_fast is not None
            and step_slow is not None
            and e.task_slow - e.task_fast >= self.drop
            and step_slow - step_fast <= self.step_tolerance
        )
        return Rates(step_fast, task_fast, compounding)

    def _entry(self, name: str) -> _Name:
        entry = self._names.get(name)
        if entry is None:
            entry = self._names[name] = _Name(deque(maxlen=self.budget_window))
            while len(self._names) > self.max_names:
                self._names.popitem(last=False)
                count_eviction("task_names", semconv.EVICTED_CAP)
        else:
            self._names.move_to_end(name)
        return entry

    # -- persistence (saved beside the drift baselines) ----------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: budgets and rates of every task name."""
        with self._lock:
            tasks = {
                name: {
                    "budget_runs": list(e.budget_runs),
                    "tasks": e.tasks,
                    "step_tasks": e.step_tasks,
                    **{f: getattr(e, f) for f in _FLOATS},
                }
                for name, e in self._names.items()
            }
        return {"version": _STATE_VERSION, "tasks": tasks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the current state with a snapshot; task entries that do not parse are
        skipped, and a snapshot of another version (or no snapshot) changes nothing."""
        if not (
            isinstance(state, dict)
            and state.get("version") == _STATE_VERSION
            and isinstance(state.get("tasks"), dict)
        ):
            return
        names: OrderedDict[str, _Name] = OrderedDict()
        for name, raw in list(state["tasks"].items())[-self.max_names :]:
            entry = _parse(raw, self.budget_window)
            if isinstance(name, str) and entry is not None:
                names[name] = entry
        with self._lock:
            self._names = names


def _parse(raw: Any, window: int) -> _Name | None:
    try:
        runs = [int(x) for x in raw["budget_runs"] if int(x) >= 0]
        entry = _Name(
            deque(runs, maxlen=window), tasks=int(raw["tasks"]), step_tasks=int(raw["step_tasks"])
        )
        for f in _FLOATS:
            value = float(raw[f])
            if not math.isfinite(value) or value < 0:
                return None
            setattr(entry, f, value)
    except (KeyError, TypeError, ValueError):
        return None
    if entry.tasks < 0 or entry.step_tasks < 0:
        return None
    return entry
