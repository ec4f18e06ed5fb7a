"""The event-loop watcher: a blocked loop shows as lag at /metrics, one watcher per loop."""

import asyncio
import time

from assistant import loopwatch, metrics


def _lag_count(at_least: float) -> float:
    """Observations of pastra_event_loop_lag_seconds above `at_least` seconds."""
    total = above = 0.0
    for sample in metrics.LOOP_LAG.collect()[0].samples:
        if sample.name.endswith("_bucket"):
            bound = float(sample.labels["le"])
            if bound == at_least:
                above = sample.value
            if bound == float("inf"):
                total = sample.value
    return total - above


async def test_a_blocked_loop_is_recorded_as_lag_and_the_task_count_is_kept():
    loopwatch.watch()
    loopwatch.watch()  # idempotent
    watchers = [t for t in asyncio.all_tasks() if t.get_name() == "event-loop watcher"]
    assert len(watchers) == 1
    before = _lag_count(0.1)
    await asyncio.sleep(0.06)
    time.sleep(0.25)  # a blocking call on the loop: every session on it waits this long
    await asyncio.sleep(0.12)
    assert _lag_count(0.1) >= before + 1
    assert metrics.TASKS._value.get() >= 2  # this test's task and the watcher, at least
    watchers[0].cancel()
