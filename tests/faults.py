"""An OTLP/HTTP backend that fails on demand, in front of a real ``OTLPReceiver``.

``FaultyBackend(receiver.http_url)`` listens on its own port; point an OTLP/HTTP exporter at
``url``. In mode ``ok`` each request is forwarded to the receiver and its answer relayed;
``down`` refuses connections (nothing listens), ``slow`` forwards after ``slow_s``, ``500`` and
``429`` answer that status, ``reset`` resets the connection once the request is read.
Used by tests/test_export_faults.py and bench/faults.py.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

MODES = ("ok", "down", "slow", "500", "429", "reset")
FAULTS = MODES[1:]


class FaultyBackend:
    def __init__(self, target_url: str, *, slow_s: float = 5.0) -> None:
        parts = urlsplit(target_url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.slow_s = slow_s
        self.mode = "ok"
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {m: 0 for m in MODES}
        """requests answered, per mode"""

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FaultyBackend:
        self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_all()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        was, self.mode = self.mode, mode
        if mode == "down":
            self._close_all()
        elif was == "down":
            self._listen()

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True, name="faulty-otlp").start()

    def _close_all(self) -> None:
        with self._lock:
            sockets = (
                [self._listener, *self._connections] if self._listener else list(self._connections)
            )
            self._listener = None
            self._connections.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    # -- serving ---------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                mode = self.mode
                self.requests[mode] += 1
                if mode == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if mode in ("500", "429"):
                    conn.sendall(f"HTTP/1.1 {mode} Fault\r\nContent-Length: 0\r\n\r\n".encode())
                    continue
                if mode == "slow":
                    time.sleep(self.slow_s)
                conn.sendall(self._forward(*request))
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(conn)
            reader.close()
            conn.close()

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> bytes:
        target = http.client.HTTPConnection(*self._target, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k in ("content-type", "content-encoding")}
            target.request("POST", path, body=body, headers=keep)
            answer = target.getresponse()
            payload = answer.read()
            kind = answer.getheader("content-type", "application/x-protobuf")
        finally:
            target.close()
        head = f"HTTP/1.1 {answer.status} {answer.reason}\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n\r\n"
        return head.encode() + payload


def _read_request(reader) -> tuple[str, dict[str, str], bytes] | None:  # type: ignore[no-untyped-def]
    """(path, lower-cased headers, body) of the next request on a connection, None at its end."""
    line = reader.readline()
    if not line:
        return None
    path = line.split()[1].decode()
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int(reader.readline().split(b";")[0], 16):
            body += reader.read(size)
            reader.readline()
        reader.readline()
    else:
        body = reader.read(int(headers.get("content-length", "0")))
    return path, headers, body
