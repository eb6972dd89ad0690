"""Running the ASGI app under uvicorn, with worker processes that share the load evenly.

uvicorn's workers all accept from one shared listening socket, and Linux hands most new
connections to whichever worker waited last: with 64 keep-alive clients on two workers we saw
47 connections on one and 17 on the other, and the busy worker's queue set the p99 latency.
On Linux each worker here listens on a socket of its own on the same port (``SO_REUSEPORT``),
and the kernel spreads connections across them by their address hash instead.

uvicorn's supervisor still starts, watches and restarts the workers. It sends each worker the
socket it was given through ``multiprocessing`` pickling; the socket we give it is bound but
never listens, and unpickles in the worker as a new listening socket on the same address.

Each worker also freezes what start-up made (``gc.freeze``) once the app has started. Python's
full garbage collection walks every object it tracks, and a started worker holds some 150,000
(modules, classes, the app's routes and schemas) that live as long as it does: under load each
full collection stopped a worker for 75-130 ms, every few seconds, and set the p99 latency.
Frozen objects are left out of every collection, so a full collection walks only what requests
made since.

The port is bound before anything else happens (:func:`run`): a port already in use is
:class:`CannotListen` before a worker starts or a line says Kassa is serving.

This module imports the app only when a worker builds it (``create_served_app``). A new worker
unpickles its socket (``_bound_socket``, from here) before it starts answering the supervisor's
health checks, and uvicorn kills a worker that does not answer within 5 s: on a busy machine,
importing the app first took 9-21 s, and every worker was killed and started again, forever.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

APP = "kassa.serving:create_served_app"

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def create_served_app() -> ASGIApp:
    """The app as ``kassa serve`` runs it in each worker process (see the module's text)."""
    from kassa.app import create_app

    return FreezeAfterStartup(create_app())


class FreezeAfterStartup:
    """ASGI wrapper: once ``app`` reports its start-up complete, freeze every object made so far
    out of the garbage collector's reach. Only for a server process, never in-process: a test
    run would freeze its own objects too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_after_freezing(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()  # what start-up left as garbage goes first, not into the freeze
                gc.freeze()
            await send(message)

        await self.app(scope, receive, send_after_freezing)


class CannotListen(Exception):
    """The port cannot be had (in use, or not ours to take): nothing was started."""


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to the address, as uvicorn would bind it (``SO_REUSEADDR``, which on
    Linux still refuses a port another socket listens on); uvicorn makes it listen."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise CannotListen(f"{host}:{port}: {error.strerror or error}") from error
    sock.set_inheritable(True)
    return sock


def _reuse_port_supported() -> bool:
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def _bound_socket(family: int, address: Any) -> socket.socket:
    sock = _ReusePortSocket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


class _ReusePortSocket(socket.socket):
    """A socket that, sent to a worker process, arrives there as its own socket on the address."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_bound_socket, (self.family, self.getsockname()))


def run(
    *,
    host: str,
    port: int,
    workers: int,
    access_log: bool,
    on_bound: Callable[[], None] = lambda: None,
) -> None:
    """Serve the app (``create_served_app``) until SIGINT or SIGTERM. The address is bound
    first: if it cannot be, :class:`CannotListen` and nothing started; once it is, ``on_bound``
    is called (``kassa serve`` says there that it is serving), then the workers start."""
    if access_log:  # the workers read their settings from the environment
        os.environ["KASSA_ACCESS_LOG"] = "1"
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        # Kassa writes its own access log (kassa.wallets.hotpath), in its own log format and
        # with each request's Request-Id; uvicorn's stays off.
        "access_log": False,
        "log_level": "warning",
    }
    if workers == 1:
        sock = _listening_socket(host, port)
        on_bound()
        _serve_one(uvicorn.Config(APP, **options), sock)
        return
    from kassa.kit import metrics

    # The workers add up their metrics through files (kassa.metrics); they read this at start.
    given = os.environ.get(metrics.MULTIPROCESS_DIR_ENV)
    metrics_dir = given or tempfile.mkdtemp(prefix="kassa-metrics-")
    os.environ[metrics.MULTIPROCESS_DIR_ENV] = metrics_dir
    try:
        _run_workers(config_options=options, host=host, port=port, on_bound=on_bound)
    finally:
        if not given:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve_one(config: uvicorn.Config, sock: socket.socket) -> None:
    """One process serving on ``sock``: what ``uvicorn.run`` does, given a bound socket."""
    server = uvicorn.Server(config)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: stop at once, quietly
            server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:  # the app's start-up failed; uvicorn has logged why
        raise SystemExit(STARTUP_FAILURE)


def _run_workers(
    *, config_options: dict[str, Any], host: str, port: int, on_bound: Callable[[], None]
) -> None:
    config = uvicorn.Config(APP, **config_options)
    if not _reuse_port_supported():  # one socket, shared by the workers
        shared = _listening_socket(host, port)
        on_bound()
        try:
            Multiprocess(config, sockets=[shared]).run()
        finally:
            shared.close()
        return
    # SO_REUSEPORT would let a second Kassa share this port silently: refuse a taken port first.
    _listening_socket(host, port).close()
    placeholder = _bound_socket(_family(host), (host, port))
    on_bound()
    try:
        Multiprocess(config, sockets=[placeholder]).run()
    finally:
        placeholder.close()
