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

Measured with `python -m bench --setups pastra --sessions 200 --seconds 8` (docs/asgi-server.md).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from channels.db import DatabaseSyncToAsync
from django.conf import settings

THREADS = 4  # at most this many live-path database calls at once per process

P = ParamSpec("P")
R = TypeVar("R")


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="pastra-db")
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
