"""Labelled agent runs: efficient, brute-force, loops, failures, abandoned, nested, learned budgets.

Each ``Truth`` is counted by hand from the run, following the definitions in
processors/trajectory (analysis.py: tool calls, redundancy, loops; stage.py: tasks,
outcome, brute force; history.py: learned budgets). Brute force needs more than 25 % and
at least 2 steps over budget, or a redundant call, or a loop.
"""

from __future__ import annotations

from tests.scenarios.trajectory_model import (
    AgentRun,
    ModelTurn,
    Scenario,
    ToolCall,
    ToolResult,
    Truth,
)

SUCCESS, FAILURE, ABANDONED, UNKNOWN = "success", "failure", "abandoned", "unknown"


def ask(*calls: tuple[str, str, str], **kw: object) -> ModelTurn:
    """A model turn asking for ``(tool, arguments, call id)`` calls."""
    return ModelTurn(calls=tuple(ToolCall(*c) for c in calls), **kw)  # type: ignore[arg-type]


def answer(text: str = "Here is what I found.") -> ModelTurn:
    return ModelTurn(answer=text)


def ran(call_id: str, tool: str, **kw: object) -> ToolResult:
    return ToolResult(call_id, tool, **kw)  # type: ignore[arg-type]


def _one(name: str, kind: str, run: AgentRun) -> Scenario:
    return Scenario(name, kind, (run,))


PARIS = '{"city": "Paris"}'
ROME = '{"city": "Rome"}'

RESEARCHER = AgentRun(
    "researcher",
    "researcher",
    (
        ask(("web_search", '{"q": "heat pump efficiency"}', "r1")),
        ran("r1", "web_search"),
        ask(("web_search", '{"q": "heat pump efficiency"}', "r2")),
        ran("r2", "web_search"),
        answer("Heat pumps reach a COP of 3 to 4."),
    ),
    Truth(
        steps=3,
        tool_calls=2,
        tool_errors=0,
        redundant_calls=1,
        loops=0,
        outcome=SUCCESS,
        brute_force=True,
        expected_steps=3,
    ),
    expected_steps=3,
)

LOOKUP = AgentRun(
    "lookup",
    "lookup",
    (ask(("kb_search", '{"q": "refund policy"}', "k1")), ran("k1", "kb_search"), answer()),
    Truth(
        steps=2,
        tool_calls=1,
        tool_errors=0,
        redundant_calls=0,
        loops=0,
        outcome=SUCCESS,
        brute_force=False,
        expected_steps=2,
    ),
    expected_steps=2,
)


def _triage(i: int, steps: int, truth_expected: int | None, brute: bool) -> AgentRun:
    """A triage run: ``steps - 1`` distinct tool calls, each in its own turn, then the answer."""
    body: list[ModelTurn | ToolResult] = []
    for s in range(steps - 1):
        body += [
            ask(("classify", f'{{"ticket": {i}, "pass": {s}}}', f"t{i}-{s}")),
            ran(f"t{i}-{s}", "classify"),
        ]
    body.append(answer())
    return AgentRun(
        f"triage-{i}",
        "triage",
        tuple(body),
        Truth(
            steps=steps,
            tool_calls=steps - 1,
            tool_errors=0,
            redundant_calls=0,
            loops=0,
            outcome=SUCCESS,
            brute_force=brute,
            expected_steps=truth_expected,
        ),
    )


SCENARIOS: tuple[Scenario, ...] = (
    _one(
        "one lookup",
        "efficient",
        AgentRun(
            "weather",
            "weather",
            (
                ask(("get_weather", PARIS, "c1")),
                ran("c1", "get_weather"),
                answer("Sunny, 21 C in Paris."),
            ),
            Truth(2, 1, 0, 0, 0, SUCCESS, False, expected_steps=2),
            expected_steps=2,
        ),
    ),
    _one(
        "parallel calls, run out of order",
        "efficient",
        AgentRun(
            "trip",
            "trip",
            (
                ask(("get_weather", PARIS, "c1"), ("get_weather", ROME, "c2")),
                ran("c2", "get_weather"),
                ran("c1", "get_weather"),
                ask(("book_hotel", '{"city": "Rome", "nights": 2}', "c3")),
                ran("c3", "book_hotel"),
                answer(),
            ),
            Truth(3, 3, 0, 0, 0, SUCCESS, False, expected_steps=3),
            expected_steps=3,
        ),
    ),
    _one(
        "one step over budget",
        "efficient",
        AgentRun(
            "support-5",
            "support",
            (
                ask(("search", '{"q": "reset password"}', "s1")),
                ran("s1", "search"),
                ask(("search", '{"q": "reset link expired"}', "s2")),
                ran("s2", "search"),
                ask(("read_doc", '{"id": 12}', "s3")),
                ran("s3", "read_doc"),
                ask(("read_doc", '{"id": 31}', "s4")),
                ran("s4", "read_doc"),
                answer(),
            ),
            Truth(5, 4, 0, 0, 0, SUCCESS, False, expected_steps=4),
            expected_steps=4,
        ),
    ),
    _one(
        "6 steps and 5 tool calls for a 4-step task",
        "brute_force",
        AgentRun(
            "support-6",
            "support",
            (
                ask(("search", '{"q": "reset password"}', "s1")),
                ran("s1", "search"),
                ask(("search", '{"q": "reset link expired"}', "s2")),
                ran("s2", "search"),
                ask(("read_doc", '{"id": 12}', "s3")),
                ran("s3", "read_doc"),
                ask(("search", '{"q": "account locked"}', "s4")),
                ran("s4", "search"),
                ask(("read_doc", '{"id": 31}', "s5")),
                ran("s5", "read_doc"),
                answer(),
            ),
            Truth(6, 5, 0, 0, 0, SUCCESS, True, expected_steps=4),
            expected_steps=4,
        ),
    ),
    _one(
        "the same call again",
        "brute_force",
        AgentRun(
            "orders",
            "orders",
            (
                ask(("get_user", '{"id": 42}', "u1")),
                ran("u1", "get_user"),
                ask(("get_user", '{"id":  42}', "u2")),
                ran("u2", "get_user"),
                ask(("get_orders", '{"user": 42}', "u3")),
                ran("u3", "get_orders"),
                answer(),
            ),
            Truth(4, 3, 0, 1, 0, SUCCESS, True, expected_steps=4),
            expected_steps=4,
        ),
    ),
    _one(
        "a two-call cycle",
        "loop",
        AgentRun(
            "research",
            "research",
            (
                ask(("search", '{"q": "q3 revenue"}', "a1")),
                ran("a1", "search"),
                ask(("open_page", '{"url": "https://example.com/ir"}', "a2")),
                ran("a2", "open_page"),
                ask(("search", '{"q": "q3 revenue"}', "a3")),
                ran("a3", "search"),
                ask(("open_page", '{"url": "https://example.com/ir"}', "a4")),
                ran("a4", "open_page"),
                answer(),
            ),
            Truth(5, 4, 0, 2, 1, SUCCESS, True, expected_steps=6),
            expected_steps=6,
        ),
    ),
    _one(
        "a three-call cycle, three times, then failure",
        "loop",
        AgentRun(
            "deploy",
            "deploy",
            tuple(
                step
                for rnd in range(3)
                for step in (
                    ask(("build", '{"target": "web"}', f"b{rnd}")),
                    ran(f"b{rnd}", "build"),
                    ask(("test", '{"suite": "e2e"}', f"t{rnd}")),
                    ran(f"t{rnd}", "test"),
                    ask(("deploy", '{"env": "staging"}', f"d{rnd}")),
                    ran(f"d{rnd}", "deploy", error="DeployError"),
                )
            )
            + (answer("I could not deploy."),),
            Truth(10, 9, 3, 6, 2, FAILURE, True, expected_steps=5),
            expected_steps=5,
            ending="fail",
        ),
    ),
    _one(
        "a tool error, then a fixed call",
        "efficient",
        AgentRun(
            "sql",
            "sql",
            (
                ask(("run_query", '{"sql": "SELECT * FROM order"}', "q1")),
                ran("q1", "run_query", error="ProgrammingError"),
                ask(("run_query", '{"sql": "SELECT * FROM orders"}', "q2")),
                ran("q2", "run_query"),
                answer(),
            ),
            Truth(3, 2, 1, 0, 0, SUCCESS, False, expected_steps=3),
            expected_steps=3,
        ),
    ),
    _one(
        "retrying an identical failing call",
        "brute_force",
        AgentRun(
            "fetch",
            "fetch",
            (
                ask(("fetch", '{"url": "https://example.com/a"}', "f1")),
                ran("f1", "fetch", error="TimeoutError"),
                ask(("fetch", '{"url": "https://example.com/a"}', "f2")),
                ran("f2", "fetch", error="TimeoutError"),
                ask(("fetch", '{"url": "https://example.com/a"}', "f3")),
                ran("f3", "fetch"),
                answer(),
            ),
            Truth(4, 3, 2, 2, 0, SUCCESS, True, expected_steps=4),
            expected_steps=4,
        ),
    ),
    _one(
        "an exception leaves the task",
        "failure",
        AgentRun(
            "report",
            "report",
            (ask(("get_sales", '{"quarter": "Q3"}', "g1")), ran("g1", "get_sales")),
            Truth(1, 1, 0, 0, 0, FAILURE, False, expected_steps=3),
            expected_steps=3,
            ending="raise",
        ),
    ),
    _one(
        "model calls keep failing",
        "failure",
        AgentRun(
            "summarize",
            "summarize",
            tuple(ModelTurn(error="InternalServerError") for _ in range(3)),
            Truth(3, 0, 0, 0, 0, FAILURE, False, expected_steps=2),
            expected_steps=2,
            ending="fail",
        ),
    ),
    _one(
        "the user leaves mid-task",
        "abandoned",
        AgentRun(
            "booking",
            "booking",
            (
                ask(("search_flights", '{"from": "CDG", "to": "JFK"}', "b1")),
                ran("b1", "search_flights"),
                answer("Which date?"),
            ),
            Truth(2, 1, 0, 0, 0, ABANDONED, False, expected_steps=4),
            expected_steps=4,
            ending="abandon",
        ),
    ),
    _one(
        "the task is cancelled",
        "abandoned",
        AgentRun(
            "export",
            "export",
            (ask(("export_csv", '{"table": "users"}', "e1")), ran("e1", "export_csv")),
            Truth(1, 1, 0, 0, 0, ABANDONED, False),
            ending="cancel",
        ),
    ),
    _one(
        "a research agent run as the planner's tool",
        "nested",
        AgentRun(
            "planner",
            "planner",
            (
                ask(("delegate_research", '{"topic": "heat pumps"}', "p1")),
                ran("p1", "delegate_research", agent=RESEARCHER),
                ask(("calculator", '{"expr": "3.2 * 1.1"}', "p2")),
                ran("p2", "calculator"),
                answer(),
            ),
            # 3 own steps + the researcher's 3; 2 own tool calls + its 2; its redundant call counts here too
            Truth(6, 4, 0, 1, 0, SUCCESS, True, expected_steps=4),
            expected_steps=4,
        ),
    ),
    _one(
        "an efficient agent nested in an efficient one",
        "nested",
        AgentRun(
            "concierge",
            "concierge",
            (
                ask(("ask_lookup", '{"q": "refunds"}', "n1")),
                ran("n1", "ask_lookup", agent=LOOKUP),
                answer(),
            ),
            Truth(4, 2, 0, 0, 0, SUCCESS, False, expected_steps=4),
            expected_steps=4,
        ),
    ),
    _one(
        "another framework's agent, status OK",
        "framework",
        AgentRun(
            "fw-ok",
            "fw_agent",
            (ask(("lookup", '{"sku": 7}', "w1")), ran("w1", "lookup"), answer()),
            Truth(2, 1, 0, 0, 0, SUCCESS, False),
            opener="framework",
        ),
    ),
    _one(
        "another framework's agent raises",
        "framework",
        AgentRun(
            "fw-raise",
            "fw_agent",
            (ask(("lookup", '{"sku": 7}', "w1")), ran("w1", "lookup", error="KeyError")),
            Truth(1, 1, 1, 0, 0, FAILURE, False),
            opener="framework",
            ending="raise",
        ),
    ),
    _one(
        "another framework's agent sets no status",
        "framework",
        AgentRun(
            "fw-unset",
            "fw_agent",
            (ask(("lookup", '{"sku": 7}', "w1")), ran("w1", "lookup"), answer()),
            Truth(2, 1, 0, 0, 0, UNKNOWN, False),
            opener="framework",
            ending="return",
        ),
    ),
    _one(
        "no agent span: a request with 3 LLM calls",
        "implicit",
        AgentRun(
            "http",
            "POST /chat",
            (
                ask(("kb_search", '{"q": "pricing"}', "h1")),
                ran("h1", "kb_search"),
                answer(),
                answer("Anything else?"),
            ),
            Truth(3, 1, 0, 0, 0, UNKNOWN, False),
            opener="none",
            ending="return",
        ),
    ),
    _one(
        "no agent span: one LLM call is not a task",
        "implicit",
        AgentRun(
            "http-single",
            "POST /chat",
            (answer(),),
            None,
            opener="none",
            ending="return",
        ),
    ),
    _one(
        "tools run without execute_tool spans",
        "efficient",
        AgentRun(
            "untraced",
            "untraced",
            (
                ask(("get_weather", PARIS, "x1"), ("get_weather", ROME, "x2")),
                ran("x1", "get_weather", traced=False),
                ran("x2", "get_weather", traced=False),
                answer(),
            ),
            Truth(2, 2, 0, 0, 0, SUCCESS, False, expected_steps=2),
            expected_steps=2,
        ),
    ),
    _one(
        "LLM spans without tool requests (another instrumentation)",
        "efficient",
        AgentRun(
            "opaque",
            "opaque",
            (
                ask(("search", '{"q": "x"}', "o1")),
                ran("o1", "search"),
                ask(("search", '{"q": "x"}', "o2")),
                ran("o2", "search"),
                answer(),
            ),
            # the arguments are unknown, so the repeat cannot be seen as redundant
            Truth(3, 2, 0, 0, 0, SUCCESS, False, expected_steps=3),
            expected_steps=3,
            requests_visible=False,
        ),
    ),
    _one(
        "a tool the model did not ask for",
        "efficient",
        AgentRun(
            "prefetch",
            "prefetch",
            (
                ran("pre", "load_profile"),
                ask(("get_weather", PARIS, "c1")),
                ran("c1", "get_weather"),
                answer(),
            ),
            Truth(2, 2, 0, 0, 0, SUCCESS, False, expected_steps=2),
            expected_steps=2,
        ),
    ),
    Scenario(
        "learned budget: 10 runs of 3 steps, then 6, 3 and 4",
        "learned_budget",
        tuple(_triage(i, 3, None, False) for i in range(10))
        + (_triage(10, 6, 3, True), _triage(11, 3, 3, False), _triage(12, 4, 3, False)),
    ),
)
