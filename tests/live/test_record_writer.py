"""The recorder's waits: the session's end waits for every queued batch (`finish`), a turn's
end may wait too (`wait_written`), both at once; a wait that runs out (the database down)
gives up alone and leaves the writes going on."""

import asyncio
import logging

from assistant.live import record_writer
from assistant.live.record_writer import Batch, RecordWriter


async def test_two_waits_end_when_the_queue_drains_and_a_timed_out_one_leaves_nothing(
    monkeypatch, caplog
):
    database = asyncio.Event()  # closed: every write waits for it
    written = []

    async def arecord(*, conversation_id, events, **_):
        await database.wait()
        written.append(events)
        return len(events)

    monkeypatch.setattr(record_writer, "arecord", arecord)
    writer = RecordWriter()
    task = asyncio.create_task(writer.run())
    writer.put(Batch(["said"], None, 1.0, None))
    writer.put(Batch(["answered"], None, 1.0, None))
    with caplog.at_level(logging.WARNING):
        await writer.wait_written(limit=0.05)  # the database is down: it gives up
    assert "recording still pending" in caplog.text
    assert written == []
    assert not writer._drain_waiters  # the wait that gave up is not kept

    turn = asyncio.create_task(writer.wait_written(limit=5))
    end = asyncio.create_task(writer.finish(5, "handle"))
    await asyncio.sleep(0.05)
    assert not turn.done()
    assert not end.done()
    database.set()
    await asyncio.wait_for(asyncio.gather(turn, end), 2)
    assert written == [["said"], ["answered"]]
    assert writer.written == 2
    task.cancel()
