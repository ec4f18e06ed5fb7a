"""The live path's database pool serves calls by their socket's arrival (assistant/live/db.py):
in a burst of connects the first sockets finish first instead of all at the end."""

import asyncio
import contextvars
import threading
import time

from assistant.live import db


def submit_as(executor, arrived, fn, *args):
    """Submit `fn` from a socket that connected at `arrived` (None: no socket)."""

    def inside():
        db._arrival.set(arrived)
        return executor.submit(fn, *args)

    return contextvars.copy_context().run(inside)


def blocked_executor():
    """A one-thread pool whose thread is busy until the returned event is set."""
    executor = db.ArrivalExecutor(1, "test-db")
    release, busy = threading.Event(), threading.Event()

    def hold():
        busy.set()
        release.wait(5)

    executor.submit(hold)
    assert busy.wait(5)
    return executor, release


def test_calls_are_served_by_their_sockets_arrival_not_by_when_they_were_made():
    executor, release = blocked_executor()
    served = []
    now = time.monotonic()
    # Submitted newest socket first: a first-come pool would serve them in this order.
    futures = [
        submit_as(executor, now - 0.1, served.append, "third socket"),
        submit_as(executor, now - 0.3, served.append, "first socket"),
        submit_as(executor, None, served.append, "no socket (made now)"),
        submit_as(executor, now - 0.2, served.append, "second socket"),
    ]
    release.set()
    for future in futures:
        future.result(5)
    assert served == ["first socket", "second socket", "third socket", "no socket (made now)"]


def test_an_old_sessions_call_never_jumps_more_than_the_overtake_limit(monkeypatch):
    monkeypatch.setattr(db, "OVERTAKE_SECONDS", 0.2)
    executor, release = blocked_executor()
    served = []
    waiting = submit_as(executor, time.monotonic(), served.append, "a new socket's call")
    time.sleep(0.3)  # longer than the limit
    later = submit_as(executor, time.monotonic() - 3600, served.append, "an hour-old session's")
    release.set()
    waiting.result(5), later.result(5)
    assert served == ["a new socket's call", "an hour-old session's"]


def test_errors_and_cancellations_reach_the_caller_and_the_thread_goes_on():
    executor, release = blocked_executor()
    cancelled = executor.submit(lambda: "never run")
    assert cancelled.cancel()
    failing = executor.submit(lambda: 1 / 0)
    release.set()
    try:
        failing.result(5)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("the error was lost")
    assert executor.submit(lambda: "still serving").result(5) == "still serving"


def test_a_socket_application_marks_its_tasks_with_its_arrival():
    seen = []

    async def child():
        seen.append(db._arrival.get())

    async def app(scope, receive, send):
        seen.append(db._arrival.get())
        await asyncio.create_task(child())  # the socket's tasks inherit the mark

    async def two_sockets():
        await db.arrival_order(app)({"type": "websocket"}, None, None)
        await asyncio.sleep(0.01)
        await db.arrival_order(app)({"type": "websocket"}, None, None)
        return db._arrival.get()

    before = time.monotonic()
    outside = asyncio.run(two_sockets())
    assert before <= seen[0] == seen[1] < seen[2] == seen[3] <= time.monotonic()
    assert outside is None
