"""The threading HTTP server our loopback servers share (the local LLM server, the OTLP receiver).

``ThreadingHTTPServer`` leaves keep-alive connections open after ``shutdown()``, so their
handler threads outlive the server; this one tracks its connections and can end them.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class TrackingHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections and can close them on stop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        self.track(None, request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.track(request, None)
        super().shutdown_request(request)

    def track(self, old: Any, new: Any) -> None:
        """Forget ``old`` and/or remember ``new`` (e.g. a socket replaced by its TLS wrapper)."""
        with self._connections_lock:
            if old is not None:
                self._connections.discard(old)
            if new is not None:
                self._connections.add(new)

    def close_connections(self) -> None:
        """End open keep-alive connections so no handler thread outlives the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
