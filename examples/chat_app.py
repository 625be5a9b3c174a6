"""A minimal chat app: one line of frictionlens, then plain OpenAI SDK calls.

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=... python examples/chat_app.py "Hello"

Works against any OpenAI-compatible endpoint (OPENAI_BASE_URL / OPENAI_API_KEY as the SDK
reads them; OPENAI_MODEL picks the model). Each turn resends the history, as chat apps do,
so frictionlens can thread the conversation and see regenerations, edits and rephrasings.
"""

from __future__ import annotations

import os
import sys

import openai

import frictionlens

frictionlens.instrument()


def chat(turns: list[str]) -> list[str]:
    client = openai.OpenAI()
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    history: list[dict[str, str]] = [{"role": "system", "content": "You are a concise assistant."}]
    answers = []
    for text in turns:
        history.append({"role": "user", "content": text})
        reply = client.chat.completions.create(model=model, messages=history)
        answer = reply.choices[0].message.content or ""
        history.append({"role": "assistant", "content": answer})
        answers.append(answer)
    return answers


if __name__ == "__main__":
    for line in chat(sys.argv[1:] or ["Hello!", "What can you do?"]):
        print(line)
    frictionlens.uninstrument()  # flush now (it also happens at exit)
