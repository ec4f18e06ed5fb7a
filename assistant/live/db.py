"""The live path's database calls, off Channels' single database thread when they can be.

`channels.db.database_sync_to_async` runs every call of a process on one thread
(`thread_sensitive=True`), so at a connect burst (a drained worker's clients reconnecting here
at once) each socket's token check and session start wait for every other one, and one slow
transcript write holds up every session's next database call. With PostgreSQL and a
connection pool (`PASTRA_DB_POOL_SIZE`, on by default) these calls run on a small thread pool
of Pastra's own instead, each borrowing a pooled connection and returning it afterwards.
The threads live as long as the process (a thread that exits while holding a pooled
connection would leak the pool's slot), and there are fewer of them than pooled connections.
SQLite (one writer at a time) keeps the single thread.

The pool serves the oldest session's calls first, not the oldest call: each socket's arrival
time is in a context variable (`arrival_order`, the outermost WebSocket application), and a
call waits behind the calls of sessions that connected before its own. In a burst of connects
every session goes through the same stages (the token check, the start, the close), and first
come, first served per call made every session wait for every other's stage before its next
one: all of them became ready near the end of the burst. Served by arrival, they become ready
in turn, and the median wait halves. A call never waits behind one submitted more than
OVERTAKE_SECONDS after it (established sessions' writes cannot starve new connects).

Measured with `python -m bench --setups pastra --sessions 200 --seconds 8` (docs/asgi-server.md).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from channels.db import DatabaseSyncToAsync
from django.conf import settings

THREADS = 4  # at most this many live-path database calls at once per process
OVERTAKE_SECONDS = 2.0  # how far an older session's call may jump ahead of later calls

P = ParamSpec("P")
R = TypeVar("R")


# When this task's WebSocket connected (time.monotonic()); None outside a socket's tasks.
_arrival: ContextVar[float | None] = ContextVar("pastra_socket_arrival", default=None)


def arrival_order(application):
    """The WebSocket application, each connection's tasks marked with its arrival time (the
    order the database pool serves them in)."""

    async def app(scope, receive, send):
        mark = _arrival.set(time.monotonic())
        try:
            return await application(scope, receive, send)
        finally:
            _arrival.reset(mark)

    return app


class ArrivalExecutor(Executor):
    """`workers` threads serving calls by their socket's arrival (module docstring), for as
    long as the process lives."""

    def __init__(self, workers: int, name: str) -> None:
        self._queue: list[tuple[float, int, Future, Callable, tuple, dict]] = []
        self._ready = threading.Condition()
        self._order = itertools.count()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True).start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        now = time.monotonic()
        arrived = _arrival.get()
        key = now if arrived is None else max(arrived, now - OVERTAKE_SECONDS)
        future: Future = Future()
        with self._ready:
            heapq.heappush(self._queue, (key, next(self._order), future, fn, args, kwargs))
            self._ready.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                _, _, future, fn, args, kwargs = heapq.heappop(self._queue)
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)
                del exc
            del future, fn, args, kwargs  # nothing of the call held while the thread waits


_executor: ArrivalExecutor | None = None
_executor_lock = threading.Lock()


def executor() -> ArrivalExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ArrivalExecutor(THREADS, "pastra-db")
        return _executor


# What a forked child inherited from its parent and must never use nor close (closing a psycopg
# connection sends the server a Terminate on the socket the parent still uses).
_inherited: list = []


def _after_fork_in_child() -> None:
    """A forked process (channels' live-server test case, a preloading process manager) starts
    with its parent's thread pool, whose threads did not survive the fork, and with its
    parent's connection pool, whose sockets the parent goes on using. Start both afresh."""
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()  # the parent's lock may have been held
    try:
        from django.db.backends.postgresql.base import DatabaseWrapper
    except ImportError:  # psycopg not installed: no pools
        return
    if DatabaseWrapper._connection_pools:
        _inherited.append(dict(DatabaseWrapper._connection_pools))
        DatabaseWrapper._connection_pools.clear()
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        pooled = connection.settings_dict.get("OPTIONS", {}).get("pool")
        if pooled and connection.connection is not None:
            _inherited.append(connection.connection)
            connection.connection = None


_hook_installed = False


def install_fork_hook() -> None:
    """Register `_after_fork_in_child` (once per process, before any fork: AppConfig.ready)."""
    global _hook_installed
    if not _hook_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _hook_installed = True


def concurrent_database() -> bool:
    default = settings.DATABASES["default"]
    return default["ENGINE"].endswith("postgresql") and bool(default.get("OPTIONS", {}).get("pool"))


def live_db(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Like `database_sync_to_async(fn)` (connections closed, i.e. returned to the pool, before
    and after), concurrent when the database allows it. Decided per call, so settings
    overridden in tests apply."""
    shared = DatabaseSyncToAsync(fn)

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if not concurrent_database():
            return await shared(*args, **kwargs)
        concurrent = DatabaseSyncToAsync(fn, thread_sensitive=False, executor=executor())
        return await concurrent(*args, **kwargs)

    return call
