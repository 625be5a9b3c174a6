"""A minimal tool-using agent: the model asks for tools, the app runs them and sends results back.

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=... python examples/tool_agent.py "Weather in Paris?"

Every LLM call is a span; the agent's trace shows how many steps and tool calls the task took.
"""

from __future__ import annotations

import json
import os
import sys

import openai

import frictionlens

frictionlens.instrument()

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def get_weather(city: str) -> dict[str, object]:
    return {"city": city, "forecast": "sunny", "celsius": 21}


def run(question: str, max_steps: int = 6) -> str:
    client = openai.OpenAI()
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    messages: list[dict[str, object]] = [{"role": "user", "content": question}]
    # the task span is the trajectory's root: steps, tool calls and budget are measured on it
    with frictionlens.task("weather_agent", expected_steps=2) as task:
        for _ in range(max_steps):
            reply = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
            msg = reply.choices[0].message
            if not msg.tool_calls:
                return msg.content or ""
            messages.append(msg.model_dump(exclude_none=True))
            for call in msg.tool_calls:
                with frictionlens.tool(call.function.name, call_id=call.id):
                    args = json.loads(call.function.arguments or "{}")
                    result = (
                        get_weather(**args)
                        if call.function.name == "get_weather"
                        else {"error": "unknown tool"}
                    )
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
                )
        task.abandon()
        return "(gave up after too many steps)"


if __name__ == "__main__":
    print(run(" ".join(sys.argv[1:]) or "What's the weather in Paris?"))
    frictionlens.uninstrument()
