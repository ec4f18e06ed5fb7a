"""A burst of client frames all reaches Gemini: a phone that buffered three seconds of speech
while its network stalled sends them at once, the server reads them in one go, and the
socket's task hands each to the upstream writer as the bounded uplink (1 s of audio) fills,
instead of handling the whole burst first and trimming its oldest audio."""

import asyncio
import contextlib

import pytest

from tests.live.conftest import frames as split
from tests.live.conftest import spy_sessions, start_web, tone, web_client

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_burst_of_three_seconds_of_audio_is_sent_whole(alice, start_emulator, monkeypatch):
    await start_emulator(mode="echo")  # each audio chunk answered at once with its bytes
    sessions = spy_sessions(monkeypatch)
    comm = web_client(alice)
    await start_web(comm)
    burst = split(tone(3000))  # 30 frames of 100 ms
    for frame in burst:  # all queued for the socket before its task runs again
        await comm.send_to(bytes_data=frame)
    echoed, total = 0, sum(map(len, burst))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            while echoed < total:
                message = await comm.receive_output(timeout=5)
                echoed += len(message.get("bytes") or b"")
    dropped = sessions[0].uplink.dropped_audio
    assert (echoed, dropped) == (total, 0), f"{echoed} of {total} bytes echoed, {dropped} dropped"
    await comm.disconnect()
