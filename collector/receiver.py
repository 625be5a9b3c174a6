"""An OTLP receiver: gRPC and HTTP (protobuf and JSON) in, decoded export requests out.

Anything that speaks OTLP (an SDK exporter, a collector, a non-Python app) can send here;
each accepted request goes to a ``sink`` as the protobuf message it is. Bad input is
refused with a clear message (HTTP 400 / gRPC INVALID_ARGUMENT) and never takes the
server down. Requests are bounded in size, compressed or not. Optional: a bearer token
(401 / UNAUTHENTICATED without it), TLS, and a sink that refuses work it has no room for
by raising ``Overloaded`` (429 + Retry-After / RESOURCE_EXHAUSTED + RetryInfo, which OTLP
exporters retry).
"""

from __future__ import annotations

import hmac
import logging
import ssl
import threading
import zlib
from collections.abc import Callable, Collection
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Literal

import grpc
from google.protobuf import any_pb2, duration_pb2, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from frictionlens.exporters import otlp_json
from frictionlens.httpserver import TrackingHTTPServer

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "OTLPReceiver", "Overloaded", "Signal", "Sink", "TLSFiles"]

_log = logging.getLogger(__name__)

Signal = Literal["traces", "metrics", "logs"]
Sink = Callable[[Signal, Message], None]
"""Receives each accepted request: (signal, Export*ServiceRequest). Called from server
threads, concurrently: it must be thread-safe. If it raises ``Overloaded``, the sender gets
HTTP 429 / gRPC RESOURCE_EXHAUSTED and retries later; any other exception, HTTP 500 /
gRPC INTERNAL."""

TLSFiles = tuple[str, str]
"""(certificate chain PEM file, private key PEM file)"""


class Overloaded(Exception):
    """Raised by a sink with no room for a request: the sender should retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


#: largest request accepted, before and after decompression (the gRPC default is 4 MiB)
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"


@dataclass(frozen=True)
class _Kind:
    signal: Signal
    request: type[Message]
    response: type[Message]
    service: str  # full gRPC service name, from the generated descriptors
    path: str


_KINDS = (
    _Kind(
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
        trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
        "/v1/traces",
    ),
    _Kind(
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
        metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name,
        "/v1/metrics",
    ),
    _Kind(
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
        logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name,
        "/v1/logs",
    ),
)
_BY_PATH = {k.path: k for k in _KINDS}


class _Refused(Exception):
    """A request we answer with an error status instead of passing on."""

    def __init__(
        self,
        http_status: int,
        grpc_code: grpc.StatusCode,
        message: str,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.grpc_code = grpc_code
        self.message = message
        self.retry_after_s = retry_after_s

    def http_headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, round(self.retry_after_s)))
        if self.http_status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return headers

    def abort(self, context: grpc.ServicerContext) -> None:
        """End the gRPC call with this status (and a RetryInfo when the sender should retry)."""
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after_s * 1e9))
            info = error_details_pb2.RetryInfo(retry_delay=delay)
            detail = any_pb2.Any()
            detail.Pack(info)
            status = status_pb2.Status(
                code=self.grpc_code.value[0], message=self.message, details=[detail]
            )
            context.set_trailing_metadata(
                (
                    (
                        "google.rpc.retryinfo-bin",
                        info.SerializeToString(),
                    ),  # what the Python exporter reads
                    (
                        "grpc-status-details-bin",
                        status.SerializeToString(),
                    ),  # the gRPC standard (Go collector)
                )
            )
        context.abort(self.grpc_code, self.message)


def _invalid(message: str) -> _Refused:
    return _Refused(400, grpc.StatusCode.INVALID_ARGUMENT, message)


def _malformed(kind: _Kind, detail: object) -> _Refused:
    return _invalid(f"malformed {kind.request.DESCRIPTOR.name}: {detail}")


def _parse_protobuf(kind: _Kind, body: bytes) -> Message:
    try:
        return kind.request.FromString(body)
    except DecodeError as exc:
        raise _malformed(kind, exc) from None


def _parse_json(kind: _Kind, body: bytes) -> Message:
    try:
        return otlp_json.parse(body, kind.request())
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _malformed(kind, exc) from None


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"endpoint must be host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class OTLPReceiver:
    """OTLP over gRPC (TraceService, MetricsService, LogsService ``Export``) and over HTTP
    (POST /v1/traces, /v1/metrics, /v1/logs; protobuf or JSON; gzip or not).

    Endpoints are ``host:port``; port 0 picks a free port (read it back from
    ``grpc_port`` / ``http_port``); None turns that transport off. Use as a context manager
    or call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        grpc_endpoint: str | None = "127.0.0.1:0",
        http_endpoint: str | None = "127.0.0.1:0",
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        signals: Collection[Signal] = ("traces", "metrics", "logs"),
        bearer_token: str | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        """``signals``: the services offered (others answer 404 / UNIMPLEMENTED).
        ``bearer_token``: required as ``Authorization: Bearer <token>`` (HTTP header or gRPC
        metadata) when set. ``tls``: serve gRPC and HTTPS with this certificate and key."""
        self._sink = sink
        self._kinds = tuple(k for k in _KINDS if k.signal in signals)
        self._authorization = None if bearer_token is None else f"Bearer {bearer_token}".encode()
        self._tls = tls
        self._grpc_address = None if grpc_endpoint is None else _split_endpoint(grpc_endpoint)
        self._http_address = None if http_endpoint is None else _split_endpoint(http_endpoint)
        self.max_request_bytes = max_request_bytes
        self._grpc: grpc.Server | None = None
        self._grpc_workers: futures.ThreadPoolExecutor | None = None
        self._http: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.grpc_port: int | None = None
        self.http_port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> OTLPReceiver:
        if self._grpc is not None or self._http is not None:
            raise RuntimeError("receiver already started")
        try:
            if self._grpc_address is not None:
                self._start_grpc(self._grpc_address)
            if self._http_address is not None:
                self._start_http(self._http_address)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop both servers; in-flight gRPC calls get ``grace_s`` to finish."""
        if self._http is not None:
            self._http.shutdown()
            self._http.close_connections()
            self._http.server_close()
            if self._http_thread is not None:
                self._http_thread.join()
            self._http = self._http_thread = None
        if self._grpc is not None:
            self._grpc.stop(grace_s).wait()
            self._grpc = None
        if self._grpc_workers is not None:
            self._grpc_workers.shutdown(wait=False)
            self._grpc_workers = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------
    @property
    def grpc_endpoint(self) -> str | None:
        """``host:port`` of the gRPC server, as gRPC exporters take it (None when off)."""
        if self.grpc_port is None or self._grpc_address is None:
            return None
        return f"{_url_host(self._grpc_address[0])}:{self.grpc_port}"

    @property
    def http_url(self) -> str | None:
        """Base URL of the HTTP server (append /v1/traces etc.); None when off."""
        if self.http_port is None or self._http_address is None:
            return None
        return f"{'https' if self._tls else 'http'}://{_url_host(self._http_address[0])}:{self.http_port}"

    # -- the one path every request takes -----------------------------------------------
    def _check_auth(self, authorization: str | None) -> None:
        if self._authorization is None:
            return
        if authorization is None or not hmac.compare_digest(
            authorization.encode(), self._authorization
        ):
            raise _Refused(
                401,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong bearer token (Authorization: Bearer ...)",
            )

    def _accept(self, kind: _Kind, message: Message) -> None:
        try:
            self._sink(kind.signal, message)
        except Overloaded as exc:
            raise _Refused(
                429, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc.retry_after_s
            ) from None
        except Exception as exc:
            _log.warning("OTLP sink failed on %s", kind.signal, exc_info=True)
            raise _Refused(
                500, grpc.StatusCode.INTERNAL, f"could not accept {kind.signal}: {exc}"
            ) from None

    # -- gRPC ----------------------------------------------------------------------------
    def _start_grpc(self, address: tuple[str, int]) -> None:
        self._grpc_workers = futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="otlp-grpc"
        )
        server = grpc.server(
            self._grpc_workers,
            # no SO_REUSEPORT: a second receiver on a busy port must fail, not share it
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        for kind in self._kinds:
            # Raw bytes in (no request_deserializer): grpc would answer a body that does not
            # parse with INTERNAL; it is the sender's error, so it gets INVALID_ARGUMENT.
            handler = grpc.unary_unary_rpc_method_handler(
                self._grpc_export(kind), response_serializer=kind.response.SerializeToString
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(kind.service, {"Export": handler}),)
            )
        where = f"{_url_host(address[0])}:{address[1]}"
        if self._tls is None:
            self.grpc_port = server.add_insecure_port(where)
        else:
            cert, key = (_read(path) for path in self._tls)
            self.grpc_port = server.add_secure_port(
                where, grpc.ssl_server_credentials([(key, cert)])
            )
        server.start()
        self._grpc = server

    def _grpc_export(self, kind: _Kind) -> Callable[[bytes, grpc.ServicerContext], Message]:
        def export(body: bytes, context: grpc.ServicerContext) -> Message:
            try:
                self._check_auth(dict(context.invocation_metadata()).get("authorization"))
                self._accept(kind, _parse_protobuf(kind, body))
            except _Refused as refused:
                refused.abort(context)
            return kind.response()

        return export

    # -- HTTP ----------------------------------------------------------------------------
    def _start_http(self, address: tuple[str, int]) -> None:
        server = _HTTPServer(address, self, _server_context(self._tls) if self._tls else None)
        self.http_port = server.server_address[1]
        self._http = server
        self._http_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="otlp-http",
            daemon=True,
        )
        self._http_thread.start()

    def _http_export(
        self,
        path: str,
        content_type: str,
        encoding: str,
        body: bytes,
        authorization: str | None = None,
    ) -> tuple[int, str, bytes, dict[str, str]]:
        """(status, content type, body, extra headers) of the answer to one POST."""
        try:
            self._check_auth(authorization)
        except _Refused as refused:
            return (
                refused.http_status,
                "text/plain",
                refused.message.encode(),
                refused.http_headers(),
            )
        kind = _BY_PATH.get(path)
        if kind not in self._kinds:
            paths = " or ".join(k.path for k in self._kinds)
            return 404, "text/plain", f"no OTLP endpoint at {path}; use {paths}".encode(), {}
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in (_PROTOBUF, _JSON):
            return (
                415,
                "text/plain",
                f"unsupported Content-Type {content_type!r}; use {_PROTOBUF} or {_JSON}".encode(),
                {},
            )
        try:
            body = self._decompress(encoding, body)
            parse = _parse_json if media == _JSON else _parse_protobuf
            self._accept(kind, parse(kind, body))
        except _Refused as refused:
            status = status_pb2.Status(code=refused.grpc_code.value[0], message=refused.message)
            return refused.http_status, media, _encode(status, media), refused.http_headers()
        return 200, media, _encode(kind.response(), media), {}

    def _decompress(self, encoding: str, body: bytes) -> bytes:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding != "gzip":
            raise _Refused(
                415,
                grpc.StatusCode.UNIMPLEMENTED,
                f"unsupported Content-Encoding {encoding!r}; use gzip",
            )
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(body, self.max_request_bytes + 1)
        except zlib.error as exc:
            raise _invalid(f"malformed gzip body: {exc}") from None
        if len(data) > self.max_request_bytes:
            raise _too_large(self.max_request_bytes)
        if not inflater.eof:
            raise _invalid("malformed gzip body: truncated")
        return data


def _too_large(limit: int) -> _Refused:
    return _Refused(413, grpc.StatusCode.RESOURCE_EXHAUSTED, f"request larger than {limit} bytes")


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _server_context(tls: TLSFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls)
    return context


def _encode(message: Message, media: str) -> bytes:
    if media == _JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


class _HTTPServer(TrackingHTTPServer):
    def __init__(
        self, address: tuple[str, int], receiver: OTLPReceiver, tls: ssl.SSLContext | None = None
    ) -> None:
        self.receiver = receiver
        self._tls = tls
        super().__init__(address, _HTTPHandler)

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if self._tls is None:
            super().finish_request(request, client_address)
            return
        # The handshake runs here, on the connection's own thread, not on the accept loop.
        request.settimeout(_HTTPHandler.timeout)
        secure = self._tls.wrap_socket(request, server_side=True)
        self.track(request, secure)
        try:
            super().finish_request(secure, client_address)
        finally:
            self.shutdown_request(secure)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        _log.debug("OTLP/HTTP connection from %s failed", client_address, exc_info=True)


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as exporters' HTTP clients expect
    server_version = "frictionlens-otlp"
    timeout = 60  # seconds an idle keep-alive connection may hold a thread
    server: _HTTPServer

    def do_POST(self) -> None:  # noqa: N802 - the http.server naming
        receiver = self.server.receiver
        try:
            body = self._read_body(receiver.max_request_bytes)
        except _Refused as refused:
            self.close_connection = True  # the unread body would desync the connection
            self._reply(refused.http_status, "text/plain", refused.message.encode())
            return
        status, content_type, payload, headers = receiver._http_export(  # pylint: disable=protected-access
            self.path.split("?", 1)[0],
            self.headers.get("Content-Type", ""),
            self.headers.get("Content-Encoding", ""),
            body,
            self.headers.get("Authorization"),
        )
        self._reply(status, content_type, payload, headers)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            raise _Refused(
                411,
                grpc.StatusCode.INVALID_ARGUMENT,
                "Content-Length or chunked Transfer-Encoding required",
            )
        if int(length) > limit:
            raise _too_large(limit)
        return self.rfile.read(int(length))

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise _invalid("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, then the final CRLF
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise _too_large(limit)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after each chunk

    def _reply(
        self, status: int, content_type: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by design
        pass
