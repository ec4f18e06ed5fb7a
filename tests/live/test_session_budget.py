"""What one open, streaming live session keeps resident stays within its budget (issue 13,
docs/memory-profile.md): the tasks it runs, on both client paths, and the Python memory it
holds, measured in-process with tracemalloc. Counts and bytes, never time: a regression that
adds a long-lived task per session, or keeps a message or a buffer per session, fails here."""

import asyncio
import base64
import gc
import logging
import os
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from assistant.live.errors import EndKind, SessionEnd
from assistant.live.tasks import OUTPUT, WORKERS, SessionTasks
from assistant.live.wake import Wake
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    spy_sessions,
    start_web,
    tone,
    wait_for,
    web_client,
)

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
OURS = (str(ROOT / "assistant") + os.sep, str(ROOT / "pastra_site") + os.sep)
SESSIONS = 6
CHUNKS = 5  # audio chunks each session streams (and gets echoed) before it is measured
# Every task a session keeps while it streams: the socket's main task and the session's own
# (tasks.py). The housekeeper's timers are call_later handles, not a task.
SESSION_ROLES = ("downlink", "recorder", "upstream reader", "upstream writer")
# None for the control groups: the process's one listener (control_hub.py) serves them all.
# Python memory allocated under Pastra's code (any frame in assistant/ or pastra_site/: the
# session's parts, and the Channels and websockets objects made for it) and still held per
# open streaming session: 29.5 KB on either path (88 before issue 13, 35 before the control
# hub; docs/memory-profile.md). A message of these sessions kept per session (16 KB of PCM,
# 21 KB as base64) fails it, and so does a layer channel and its receive task per socket.
MAX_BYTES_PER_SESSION = 34 * 1024


@pytest.fixture
def sessions(monkeypatch, live_settings):
    live_settings.PASTRA_MAX_SESSIONS_PER_USER = SESSIONS + 2
    return spy_sessions(monkeypatch)


def ours(task: asyncio.Task) -> bool:
    """A task running Pastra's code (whatever its name)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_filename.startswith(OURS)


def label(task: asyncio.Task) -> str:
    """Its name, or (unnamed) its coroutine's."""
    name = task.get_name()
    return f"<{task.get_coro().__qualname__}>" if name.startswith("Task-") else name


PER_PROCESS = ("event-loop watcher", "control hub", "control hub renewal")  # loopwatch, control_hub


def pastra_tasks() -> list[str]:
    """Pastra's open tasks but those one per process (or loop), whatever the sessions."""
    tasks = [t for t in asyncio.all_tasks() if ours(t) and not t.done()]
    return sorted(label(t) for t in tasks if t.get_name() not in PER_PROCESS)


PCM = tone(500)  # 16 KB: a message kept per session shows plainly
AUDIO = {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": ""}}}


async def open_gemini(token: str):
    comm = gemini_client(token)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}"}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    return comm


async def stream_gemini(comm) -> None:
    data = base64.b64encode(PCM).decode()
    for _ in range(CHUNKS):
        AUDIO["realtimeInput"]["audio"]["data"] = data
        await comm.send_json_to(AUDIO)
        reply = await gemini_recv(comm)  # the echo
        assert "serverContent" in reply, reply


async def open_web(user):
    comm = web_client(user)
    await start_web(comm)
    return comm


async def stream_web(comm) -> None:
    for _ in range(CHUNKS):
        await comm.send_to(bytes_data=PCM)
        while (await comm.receive_output(timeout=10))["type"] != "websocket.send":
            pass


async def settle(sessions) -> None:
    """Until every session's uplink and downlink are empty and their writers wait."""
    await wait_for(lambda: all(not s.uplink and not s.downlink for s in sessions))
    for _ in range(5):
        await asyncio.sleep(0)


async def close_all(comms, sessions) -> None:
    for comm in comms:
        await comm.disconnect()
    await wait_for(lambda: all(s.shutdown_trace[-1:] == ["output"] for s in sessions))


@pytest.mark.parametrize("path", ["gemini", "web"])
async def test_each_open_session_runs_its_socket_task_and_four_of_its_own(
    path, alice, alice_token, start_emulator, sessions
):
    await start_emulator(mode="echo")
    before = pastra_tasks()
    comms = []
    for _ in range(3):
        comm = await (open_gemini(alice_token) if path == "gemini" else open_web(alice))
        await (stream_gemini(comm) if path == "gemini" else stream_web(comm))
        comms.append(comm)
    await settle(sessions)
    try:
        added = list((Counter(pastra_tasks()) - Counter(before)).elements())
        kind = "sdk" if path == "gemini" else "web"
        expected = sorted(
            [f"user={alice.pk} {kind} socket"] * 3
            + [f"conv={s.conversation_id} {role}" for s in sessions for role in SESSION_ROLES]
        )
        assert sorted(added) == expected
        for session in sessions:
            owner = f"conv={session.conversation_id}"
            assert session.tasks.names() == [f"{owner} {role}" for role in SESSION_ROLES]
    finally:
        await close_all(comms, sessions)
    assert Counter(pastra_tasks()) - Counter(before) == Counter()


LOGGING = os.path.dirname(logging.__file__) + os.sep
# The database layer's allocations are its connections' caches (per thread, not per session).
NOT_PER_SESSION = tuple(str(ROOT / "assistant" / name) for name in ("services.py", "selectors.py"))


def per_session(traceback: tracemalloc.Traceback) -> bool:
    """Allocated by Pastra's code (the innermost frame of ours), not a log record (pytest
    keeps those) nor the database layer's caches."""
    frames = list(traceback)
    if any(frame.filename.startswith(LOGGING) for frame in frames):
        return False
    inner = next((f.filename for f in reversed(frames) if f.filename.startswith(OURS)), None)
    return inner is not None and not inner.startswith(NOT_PER_SESSION)


def held_by_ours(snapshot: tracemalloc.Snapshot) -> int:
    return sum(trace.size for trace in snapshot.traces if per_session(trace.traceback))


@pytest.mark.parametrize("path", ["gemini", "web"])
async def test_an_open_streaming_session_holds_little_memory(
    path, alice, alice_token, start_emulator, sessions
):
    await start_emulator(mode="echo")

    async def open_streaming():
        if path == "gemini":
            comm = await open_gemini(alice_token)
            await stream_gemini(comm)
        else:
            comm = await open_web(alice)
            await stream_web(comm)
        return comm

    # First-use costs (imports, caches) and the growth of process-wide tables (all tasks,
    # timers, the channel layer's) are not a session's: as many sessions and more, first.
    warm = [await open_streaming() for _ in range(SESSIONS + 2)]
    await close_all(warm, sessions)
    sessions.clear()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    tracemalloc.start(30)
    comms = []
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(SESSIONS):
            comms.append(await open_streaming())
        await settle(sessions)
        gc.collect()
        after = tracemalloc.take_snapshot()
        if os.environ.get("PASTRA_BUDGET_SNAPSHOTS"):  # to look into a failure
            before.dump(f"{os.environ['PASTRA_BUDGET_SNAPSHOTS']}-{path}.0")
            after.dump(f"{os.environ['PASTRA_BUDGET_SNAPSHOTS']}-{path}.1")
        per_session = (held_by_ours(after) - held_by_ours(before)) / SESSIONS
    finally:
        if not was_tracing:
            tracemalloc.stop()
        await close_all(comms, sessions)
    assert per_session <= MAX_BYTES_PER_SESSION, (
        f"{per_session / 1024:.1f} KB per open {path} session (budget "
        f"{MAX_BYTES_PER_SESSION / 1024:.0f} KB): docs/memory-profile.md says how to find what"
    )


# --- the parts that replaced a task or an asyncio.Event ----------------------------------------


async def test_a_wake_is_an_event_for_one_waiter():
    wake = Wake()
    assert not wake.is_set()
    waiter = asyncio.create_task(wake.wait())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await wake.wait()  # one waiter at a time
    wake.set()
    await asyncio.wait_for(waiter, 1)
    assert wake.is_set()
    await wake.wait()  # set: returns at once
    wake.clear()
    cancelled = asyncio.create_task(wake.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    again = asyncio.create_task(wake.wait())  # a cancelled waiter leaves no trace
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(again, 1)
    assert Wake(True).is_set()


async def test_task_group_timers_are_guarded_replaced_and_stopped_with_their_stage(caplog):
    ends: list[SessionEnd] = []
    tasks = SessionTasks("conv=x", ends.append)
    fired: list[str] = []
    tasks.call_later(0, lambda: fired.append("first"), "clock")
    tasks.call_later(0, lambda: fired.append("second"), "clock")  # replaces the first
    await asyncio.sleep(0.01)
    assert fired == ["second"]

    def idle():
        raise SessionEnd(EndKind.IDLE)

    tasks.call_later(0, idle, "clock")
    await asyncio.sleep(0.01)
    assert [end.kind for end in ends] == [EndKind.IDLE]

    def bug():
        raise ValueError("bug")

    tasks.call_later(0, bug, "clock")
    await asyncio.sleep(0.01)
    assert ends[-1].kind is EndKind.INTERNAL
    assert "conv=x clock timer failed" in caplog.text

    tasks.call_later(0.05, lambda: fired.append("late"), "clock")
    tasks.call_later(0.05, lambda: fired.append("output"), "flush", stage=OUTPUT)
    await tasks.stop(WORKERS)
    tasks.call_later(0, lambda: fired.append("after stop"), "clock")  # its stage stopped
    await asyncio.sleep(0.1)
    assert fired == ["second", "output"]


async def test_a_task_that_ends_the_session_or_fails_is_guarded_without_a_wrapper(caplog):
    ends: list[SessionEnd] = []
    tasks = SessionTasks("conv=y", ends.append)

    async def slow_client():
        raise SessionEnd(EndKind.SLOW_CLIENT)

    async def crash():
        raise KeyError("bug")

    async def never_started():
        raise AssertionError("cancelled before its first step")

    await asyncio.gather(tasks.spawn(slow_client(), "downlink"), return_exceptions=True)
    await asyncio.gather(tasks.spawn(crash(), "upstream reader"), return_exceptions=True)
    await asyncio.sleep(0)
    assert [end.kind for end in ends] == [EndKind.SLOW_CLIENT, EndKind.INTERNAL]
    assert "conv=y upstream reader task failed" in caplog.text
    tasks.spawn(never_started(), "recorder")
    await tasks.stop(WORKERS)
    assert tasks.names() == []
    assert len(ends) == 2
