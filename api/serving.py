"""Several server processes on one port, each listening on its own socket (SO_REUSEPORT).

uvicorn's ``--workers`` binds one socket and shares it: every worker waits on it, and libuv
accepts every pending connection in one go, so whichever worker wakes first takes the whole
burst. Under bench_intake's wrk one process served nearly all connections, bound by its GIL,
while the other idled. With a socket per worker the kernel hands each new connection to one of
them by a hash of its addresses, and the connections spread (the same technique as nginx's
``listen … reuseport``; the figures: benchmarks/README.md, "Design figures").

The supervisor here is deliberately small: start the workers, replace one that dies or hangs,
stop them all on SIGINT/SIGTERM (each finishes its requests: uvicorn's graceful shutdown), and
give up when a worker cannot start (a bad configuration fails the same way every time).

A hung worker matters more here than behind a shared socket: the kernel keeps handing it its
share of new connections, which would wait forever. Each worker's event loop stamps a shared
clock on every tick of uvicorn's main loop (ten a second); one whose clock has stood still for
``hung_after_s`` is killed and replaced (uvicorn's own supervisor pings its workers the same
way).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from ctypes import c_double
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("uvicorn.error")


def listening_socket(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _BeatingServer(uvicorn.Server):
    """uvicorn's server, stamping ``beat`` (a monotonic clock: the same for every process of
    the machine) on every tick of its event loop."""

    def __init__(self, config: uvicorn.Config, beat: c_double) -> None:
        super().__init__(config)
        self._beat = beat

    async def on_tick(self, counter: int) -> bool:
        self._beat.value = time.monotonic()
        return await super().on_tick(counter)


def _worker(app: str, host: str, port: int, options: dict[str, Any],
            beat: c_double) -> None:
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    sock.listen(2048)
    config = uvicorn.Config(app, factory=True, host=host, port=port, **options)
    server = _BeatingServer(config, beat)
    try:
        server.run(sockets=[sock])
    except Exception:
        if server.started:
            raise  # it served, then crashed: the supervisor starts another
        # The factory raised (a bad configuration: it would fail the same way every time).
        # uvicorn lets that through as an exception, which must not read as a crash.
        log.exception("the app could not be built")
        sys.exit(STARTUP_FAILURE)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def serve_workers(app: str, host: str, port: int, workers: int, hung_after_s: float = 20.0,
                  **options: Any) -> int:
    """Run ``workers`` processes serving the factory ``app`` on ``host:port`` until SIGINT or
    SIGTERM; returns the exit status (1 when a worker could not start). A worker whose event
    loop has not ticked for ``hung_after_s`` seconds once it started serving is replaced."""
    # Another server already on the port would otherwise share it (SO_REUSEPORT joins any
    # socket of the same user that sets it too): fail as a single process would.
    try:
        listening_socket(host, port, reuse_port=False).close()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}

    beats = [context.Value("d", 0.0, lock=False) for _ in range(workers)]

    def start(i: int) -> BaseProcess:
        beats[i].value = 0.0  # not serving yet: start-up (migrations, warm-up) takes its time
        process = context.Process(target=_worker, args=(app, host, port, options, beats[i]),
                                  daemon=False)
        process.start()
        return process

    processes = [start(i) for i in range(workers)]
    status = 0
    while not stop.wait(0.5):
        for i, process in enumerate(processes):
            if process.is_alive():
                still = time.monotonic() - beats[i].value
                if beats[i].value and still > hung_after_s:
                    log.error("worker %s has not run its event loop for %.0f s: replacing it",
                              process.pid, still)
                    process.kill()  # a hung loop would not act on SIGTERM either
                    process.join()
                    processes[i] = start(i)
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s could not start: stopping", process.pid)
                status = 1
                stop.set()
                break
            log.warning("worker %s ended (exit code %s): starting another",
                        process.pid, process.exitcode)
            processes[i] = start(i)
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn finishes the requests in progress
    for process in processes:
        process.join(options.get("timeout_graceful_shutdown", 10) + 5)
        if process.is_alive():
            process.kill()
            process.join()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m api.serving FACTORY --port P --workers N``: any app factory on this
    supervisor (bench_intake runs its floor app on it, as gridcore serves)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m api.serving")
    parser.add_argument("app", help="app factory as module:function")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--hung-after", type=float, default=20.0,
                        help="replace a worker whose event loop stood still this many seconds")
    parser.add_argument("--graceful", type=float, default=10.0,
                        help="seconds a stopping worker gives open requests (live event "
                             "streams stay open until then)")
    args = parser.parse_args(argv)
    return serve_workers(args.app, args.host, args.port, args.workers,
                         hung_after_s=args.hung_after, log_level=args.log_level,
                         access_log=False, timeout_graceful_shutdown=args.graceful)


if __name__ == "__main__":
    sys.exit(main())
