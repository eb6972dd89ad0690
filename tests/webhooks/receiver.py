"""A real HTTP server that receives webhooks in tests, answering as each test tells it to."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b"ok"


class Receiver:
    """Records every request; ``replies`` (a queue) says how to answer, then ``default``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.on_request: Callable[[Received], None] | None = None
        self._changed = threading.Condition()
        self.url = ""
        self._hold_until: int | None = None
        self._waiting = 0
        self.most_in_flight = 0

    def hold_until(self, in_flight: int) -> None:
        """Hold every request until ``in_flight`` wait at once (then let all through): proof that
        more than one sender works at the same time."""
        self._hold_until = in_flight

    def gate(self, timeout: float = 60) -> None:
        if self._hold_until is None:
            return
        with self._changed:
            self._waiting += 1
            self.most_in_flight = max(self.most_in_flight, self._waiting)
            self._changed.notify_all()
            self._changed.wait_for(
                lambda: self._hold_until is None or self._waiting >= self._hold_until, timeout
            )
            self._hold_until = None
            self._waiting -= 1
            self._changed.notify_all()

    def answer(self, request: Received) -> Reply:
        with self._changed:
            self.received.append(request)
            reply = self.replies.pop(0) if self.replies else self.default
            self._changed.notify_all()
        return reply

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait (in a thread) until ``count`` requests have come; False when time ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.received) >= count, timeout)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            request = Received(
                self.path,
                {key.lower(): value for key, value in self.headers.items()},
                self.rfile.read(length),
            )
            receiver.gate()
            reply = receiver.answer(request)
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the default 5 resets connections when many arrive at once

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
