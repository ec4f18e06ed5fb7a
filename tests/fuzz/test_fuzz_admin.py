"""Fuzz the admin live view (`/ws/admin/conversations/<uuid>/`, staff cookie + Origin): it
reads nothing, so whatever a page sends (either client's frames, odd `?after=`) must leave it
showing the next recorded turn of the conversation it watches, or close it clearly."""

import asyncio
import contextlib
import uuid

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fuzz.conftest import examples, verdict
from tests.fuzz.runner import watch_case, web_case
from tests.fuzz.shapes import any_frames, dumps
from tests.live.conftest import MODEL

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(0), pytest.mark.slow]

AFTER = st.one_of(
    st.just("0"),
    st.just("0"),
    st.sampled_from(["", "-1", "abc", "1e3", "9" * 40, "0x10", "%00", "1&after=2"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


class Talker:
    """alice's web session in the watched conversation, kept open across examples; a reader
    task drains it (an unread socket would stall the server's sends) and notes turn ends."""

    def __init__(self, server, cookie) -> None:
        self.server, self.cookie = server, cookie
        self.ws = None
        self.conversation = None
        self.reader = None
        self.completed = asyncio.Event()

    async def open(self) -> None:
        self.ws = await connect(
            self.server.ws_url + "/ws/live/",
            origin=self.server.base_url,
            additional_headers={"Cookie": self.cookie},
            compression=None,
        )
        start = {"type": "start", "modality": "text", "model": MODEL}
        if self.conversation:
            start["conversation"] = self.conversation
        await self.ws.send(dumps(start))
        while True:
            event = orjson.loads(await self.ws.recv())
            if event["type"] == "session" and event["state"] == "ready":
                self.conversation = event["conversation"]
                break
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.ws:
                if isinstance(frame, str) and orjson.loads(frame)["type"] == "turn.complete":
                    self.completed.set()

    async def turn(self) -> str:
        """Send a marked text turn and wait for its end (reopening the session if it ended:
        the watcher's check then says whether that happened)."""
        if self.ws is None or self.ws.close_code is not None:
            await self.open()
        marker = f"watch {uuid.uuid4().hex[:10]}"
        self.completed.clear()
        await self.ws.send(dumps({"type": "text", "text": marker}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.completed.wait(), 15)
        return marker

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


def test_admin_live_view_ignores_what_pages_send(server, loop, alice, staff, login_cookie):
    talker = Talker(server, login_cookie(alice))
    loop.run_until_complete(talker.open())
    watcher_cookie = login_cookie(staff)

    @settings(max_examples=examples(0.5))
    @given(after=AFTER, frames=st.lists(any_frames(), min_size=1, max_size=3))
    def case(after, frames):
        out = loop.run_until_complete(
            watch_case(server, watcher_cookie, talker.conversation, after, frames, talker.turn)
        )
        verdict(server, staff, out, what=f"after={after!r} {frames!r}")

    case()
    # A fresh watcher works afterwards, and so does the talker's session.
    out = loop.run_until_complete(
        watch_case(server, watcher_cookie, talker.conversation, "0", [], talker.turn)
    )
    assert out.answered, out
    loop.run_until_complete(talker.close())
    out = loop.run_until_complete(web_case(server, login_cookie(alice), [], start=True))
    assert out.answered, out
