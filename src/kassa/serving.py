"""Running the ASGI app under uvicorn, with worker processes that share the load evenly.

uvicorn's workers all accept from one shared listening socket, and Linux hands most new
connections to whichever worker waited last: with 64 keep-alive clients on two workers we saw
47 connections on one and 17 on the other, and the busy worker's queue set the p99 latency.
On Linux each worker here listens on a socket of its own on the same port (``SO_REUSEPORT``),
and the kernel spreads connections across them by their address hash instead.

uvicorn's supervisor still starts, watches and restarts the workers. It sends each worker the
socket it was given through ``multiprocessing`` pickling; the socket we give it is bound but
never listens, and unpickles in the worker as a new listening socket on the same address.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "kassa.app:create_app"


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


def run(*, host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve ``kassa.app:create_app`` until SIGINT or SIGTERM."""
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": access_log,
        "log_level": "warning",
    }
    if workers == 1 or not _reuse_port_supported():
        uvicorn.run(APP, **options)
        return
    config = uvicorn.Config(APP, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # SO_REUSEPORT would let a second Kassa share this port silently: refuse a taken port first.
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    placeholder = _bound_socket(family, (host, port))
    try:
        Multiprocess(config, sockets=[placeholder]).run()
    finally:
        placeholder.close()
