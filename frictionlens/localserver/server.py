"""``LocalLLMServer``: a real HTTP peer on 127.0.0.1 for the OpenAI and Anthropic SDKs.

The SDKs are exercised over real sockets (connection pools, retries, SSE parsing, timeouts)
rather than against mocked transports, so what they do here is what they do in production.
HTTP/1.1 keep-alive with exact ``Content-Length`` (chunked encoding for streams) keeps the
SDKs' pools reusing connections; a client that disconnects mid-stream only ends its own
connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from collections import deque
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from frictionlens.httpserver import TrackingHTTPServer
from frictionlens.localserver.reply import ReceivedRequest, Reply, Responder
from frictionlens.localserver.responder import default_responder
from frictionlens.localserver.wire import ROUTES, dumps, error_body

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class LocalLLMServer:
    """A scripted OpenAI + Anthropic compatible server; use as a context manager.

    Each request takes the next reply queued with ``script()``; when none is queued the
    ``responder`` decides (default: ``default_responder``). Every request is recorded in
    ``requests`` (the newest ``keep_requests`` of them; ``request_count`` counts all).
    """

    def __init__(
        self, responder: Responder = default_responder, *, keep_requests: int = 10_000
    ) -> None:
        self.responder: Responder = responder
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._requests: deque[ReceivedRequest] = deque(maxlen=keep_requests)
        self._count = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> LocalLLMServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="frictionlens-localserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; also the Anthropic SDK's ``base_url``."""
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # --- behaviour and records -----------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies, consumed one per HTTP request (any endpoint) in order."""
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of the recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._count

    def reset(self) -> None:
        """Forget recorded requests and pending replies, restore the default responder."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._count = 0
        self.responder = default_responder

    def _receive(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, client_port: int
    ) -> tuple[ReceivedRequest, Reply]:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            request = ReceivedRequest(self._count, method, path, headers, raw, body, client_port)
            self._count += 1
            self._requests.append(request)
            reply = self._script.popleft() if self._script else None
        if reply is None:
            try:
                reply = self.responder(request)
            except Exception:  # a broken responder is reported to the client, never swallowed
                reply = Reply(
                    status=500, error=traceback.format_exc(), headers={"x-should-retry": "false"}
                )
        return request, reply


class _HTTPServer(TrackingHTTPServer):
    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: LocalLLMServer
    ) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that went away is not an error worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def finish(self) -> None:
        try:
            super().finish()
        except _DISCONNECTS:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: benches push thousands of requests through."""

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        # an absolute URI is a proxy-form request: a client reached us under another host name
        path = urlsplit(self.path).path if "://" in self.path else self.path.split("?", 1)[0]
        request, reply = self.server.owner._receive(
            self.command, path, headers, raw, self.client_address[1]
        )
        try:
            self._answer(request, reply)
        except _DISCONNECTS:
            self.close_connection = True

    def _answer(self, request: ReceivedRequest, reply: Reply) -> None:
        if reply.delay_s > 0:
            time.sleep(reply.delay_s)
        route = ROUTES.get(request.path)
        provider = route.provider if route is not None else request.provider
        base = {
            "x-request-id"
            if provider == "openai"
            else "request-id": f"req_local{request.index:08d}"
        }
        custom = {name.lower(): value for name, value in reply.headers.items()}
        if reply.raw_body is not None:
            self._send_body(reply.status, reply.raw_body, base, custom)
            return
        if route is None and reply.status < 400:
            reply = replace(
                reply, status=404, error=f"no route for {request.method} {request.path}"
            )
        if route is None or reply.status >= 400:
            self._send_body(
                reply.status, dumps(error_body(provider, reply.status, reply.error)), base, custom
            )
            return
        events = route.events if request.stream else None
        try:
            rendered = (
                list(events(request, reply))
                if events is not None
                else dumps(route.body(request, reply))
            )
        except Exception:  # a reply the wire format cannot carry: say why, and ask for no retry
            payload = dumps(error_body(provider, 500, traceback.format_exc()))
            self._send_body(500, payload, base, {"x-should-retry": "false"})
            return
        if isinstance(rendered, list):
            self._send_stream(reply, rendered, base, custom)
        else:
            self._send_body(reply.status, rendered, base, custom)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_body(
        self, status: int, payload: bytes, base: dict[str, str], custom: dict[str, str]
    ) -> None:
        self._head(
            status,
            {
                **base,
                "content-type": "application/json",
                "content-length": str(len(payload)),
                **custom,
            },
        )
        self.wfile.write(payload)

    def _send_stream(
        self, reply: Reply, events: list[bytes], base: dict[str, str], custom: dict[str, str]
    ) -> None:
        headers = {
            **base,
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
            **custom,
        }
        self._head(reply.status, headers)
        cut = reply.truncate_stream_after
        sent = events if cut is None else events[: max(0, cut)]
        if reply.chunk_delay_s > 0:
            for position, event in enumerate(sent):
                if position:
                    time.sleep(reply.chunk_delay_s)
                self.wfile.write(_chunk(event))
        else:
            self.wfile.write(b"".join(map(_chunk, sent)))
        if cut is not None and cut < len(events) and not reply.truncate_cleanly:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)
