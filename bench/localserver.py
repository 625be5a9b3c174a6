"""How fast the local server answers, so benches and tests built on it know its share.

Rows: the server alone (a raw keep-alive socket, no SDK) and through the real SDKs, for a
chat call and a 50-chunk stream; then throughput with several client threads.

    python bench/localserver.py [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable

import anthropic
import openai

from frictionlens.localserver import LocalLLMServer, Reply

MESSAGES = [{"role": "user", "content": "How do I rotate a log file every day?"}]
STREAM_50 = Reply(content="word " * 48, stream_chunks=48)  # role chunk + 48 content + finish = 50


def _raw_caller(server: LocalLLMServer, body: dict[str, object]) -> Callable[[], None]:
    """One request on a kept-alive socket, read to the end of its framing."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")
    data = json.dumps(body).encode()
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (
        len(data),
        data,
    )

    def call() -> None:
        sock.sendall(request)
        headers = {}
        reader.readline()
        while (line := reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        if "content-length" in headers:
            reader.read(int(headers["content-length"]))
            return
        while (size := int(reader.readline(), 16)) > 0:
            reader.read(size + 2)
        reader.readline()

    return call


def _times(call: Callable[[], None], calls: int) -> list[float]:
    call()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with LocalLLMServer(keep_requests=100) as server:
        oai = openai.OpenAI(base_url=server.openai_base_url, api_key="bench")
        claude = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="bench")
        stream_50 = lambda request: STREAM_50  # noqa: E731
        rows: list[tuple[str, Callable[[], None], Callable[..., Reply] | None]] = [
            ("server alone: chat", _raw_caller(server, {"model": "m", "messages": MESSAGES}), None),
            (
                "server alone: 50-chunk stream",
                _raw_caller(server, {"model": "m", "messages": MESSAGES, "stream": True}),
                stream_50,
            ),
            (
                "openai SDK: chat",
                lambda: oai.chat.completions.create(model="m", messages=MESSAGES),
                None,
            ),
            (
                "openai SDK: 50-chunk stream",
                lambda: list(
                    oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
                ),
                stream_50,
            ),
            (
                "anthropic SDK: message",
                lambda: claude.messages.create(model="m", max_tokens=99, messages=MESSAGES),
                None,
            ),
        ]
        print(f"{'row':34} {'median µs':>10} {'p95 µs':>10}")
        for label, call, responder in rows:
            server.reset()
            if responder is not None:
                server.responder = responder
            times = sorted(_times(call, args.calls))
            print(
                f"{label:34} {statistics.median(times):10.0f} {times[int(len(times) * 0.95)]:10.0f}"
            )
        server.reset()
        for threads in (1, 4, 16):
            callers = [
                _raw_caller(server, {"model": "m", "messages": MESSAGES}) for _ in range(threads)
            ]
            per_thread = max(1, args.calls // threads)
            workers = [
                threading.Thread(target=lambda c=c: [c() for _ in range(per_thread)])
                for c in callers
            ]
            start = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            rate = threads * per_thread / (time.perf_counter() - start)
            print(f"{f'server alone: {threads} client threads':34} {rate:10.0f} req/s")


if __name__ == "__main__":
    main()
