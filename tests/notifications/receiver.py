"""A real receiving HTTP server on 127.0.0.1 for the webhook tests: it answers from a script
(status, headers, body, delay) and records every request and every connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.received: list[Received] = []
        self.connections = 0
        self.in_flight: dict[str, int] = {}
        self.overlaps: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def get_request(self):  # noqa: ANN201 - socketserver's
        request = super().get_request()
        with self.lock:
            self.connections += 1
        return request

    def next_reply(self) -> Reply:
        with self.lock:
            # The last reply repeats once the script is used up.
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        key = headers.get("webhook-id", "")
        with self.server.lock:
            self.server.received.append(Received(self.path, headers, body))
            if self.server.in_flight.get(key):
                self.server.overlaps.append(key)
            self.server.in_flight[key] = self.server.in_flight.get(key, 0) + 1
        reply = self.server.next_reply()
        try:
            if reply.delay:
                time.sleep(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (a timeout): nothing to answer
            pass
        finally:
            with self.server.lock:
                self.server.in_flight[key] -= 1

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@contextmanager
def receiving(*replies: Reply) -> Iterator[Receiver]:
    server = Receiver(list(replies) or [Reply()])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
