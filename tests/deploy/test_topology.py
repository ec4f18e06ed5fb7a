"""The compose topology without Docker: two daphne workers on two ports, real Redis (channel
layer) and PostgreSQL, one emulator. (a) Staff end a session from worker B that lives on
worker A; (b) a user's conversation resumes on worker B after worker A is killed; (c) the
admin live view served by worker B shows the turns of a session on worker A as they are
recorded. (`manage.py end_session` from a third process: tests/live/test_workers.py.)"""

import asyncio
import re

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from assistant.models import Conversation, ConversationEvent
from tests.deploy.conftest import web_session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.usefixtures("settled"),
]

Kind = ConversationEvent.Kind


class Watcher:
    """The admin live view's socket (what static/staff/admin-live.js reads)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self.status = ""

    async def until(self, predicate, *, seconds: float = 15.0) -> None:
        async with asyncio.timeout(seconds):
            while not predicate(self.events):
                message = orjson.loads(await self.ws.recv())
                self.events += message["events"]
                self.status = message["status"]


async def watch(worker, cookie: str, conversation: str) -> Watcher:
    ws = await connect(
        f"{worker.ws_url}/ws/admin/conversations/{conversation}/",
        origin=worker.base_url,
        additional_headers={"Cookie": cookie},
        open_timeout=10,
    )
    watcher = Watcher(ws)
    await watcher.until(lambda events: watcher.status)  # the first message: history + status
    return watcher


async def press_end_session(worker, cookie: str, conversation: str) -> httpx.Response:
    """What the live page's button does: GET the page (CSRF token), POST the form."""
    name, value = cookie.split("=", 1)
    async with httpx.AsyncClient(base_url=worker.base_url, cookies={name: value}) as http:
        page = await http.get(f"/admin/assistant/conversation/{conversation}/live/")
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return await http.post(
            f"/admin/assistant/conversation/{conversation}/end-session/",
            data={"csrfmiddlewaretoken": token},
            follow_redirects=True,
        )


async def test_live_view_on_b_follows_a_and_ends_it(
    start_worker, redis_env, alice, staff, login_cookie
):
    a, b = start_worker("a", **redis_env), start_worker("b", **redis_env)
    web = await web_session(a, await login_cookie(alice), modality="text")
    staff_cookie = await login_cookie(staff)
    watcher = await watch(b, staff_cookie, web.conversation)
    assert watcher.status == "active"

    # (c) each turn on A appears on B's live view as it is recorded.
    await web.turn("seen from the other worker")
    await watcher.until(lambda events: any(e["kind"] == Kind.USER_TEXT for e in events))
    assert [e["text"] for e in watcher.events if e["kind"] == Kind.USER_TEXT] == [
        "seen from the other worker"
    ]
    assert any(e["role"] == "model" and "seen from the other" in e["text"] for e in watcher.events)
    await web.turn("and the next one")
    await watcher.until(lambda events: any(e["text"] == "and the next one" for e in events))
    seqs = [e["seq"] for e in watcher.events]
    assert seqs == list(range(1, len(seqs) + 1))

    # (a) staff press "End session" on B; the session on A ends.
    response = await press_end_session(b, staff_cookie, web.conversation)
    assert response.status_code == 200
    assert "Signalled the live session to end." in response.text
    assert await web.closed() == (4410, "Ended by an administrator (stella)")
    await watcher.until(lambda events: any(e["text"] == "ended" for e in events))
    await watcher.ws.close()
    conversation = await Conversation.objects.aget(pk=web.conversation)
    assert conversation.status == Conversation.Status.ENDED


async def upstream_handle(conversation_id) -> str:
    conversation = await Conversation.objects.aget(pk=conversation_id)
    return conversation.resumption_handle


async def test_conversation_resumes_on_b_after_a_is_killed(
    start_worker, redis_env, alice, login_cookie
):
    a, b = start_worker("a", **redis_env), start_worker("b", **redis_env)
    cookie = await login_cookie(alice)
    web = await web_session(a, cookie, modality="text")
    before = await upstream_handle(web.conversation)
    assert await web.turn("remember the blue door") == "You said: remember the blue door"
    # The upstream handle that covers the turn comes just after it; kill after it is stored.
    async with asyncio.timeout(10):
        while await upstream_handle(web.conversation) == before:
            await asyncio.sleep(0.05)
    a.proc.kill()  # no drain, no final flush: what each turn wrote is all there is
    assert (await web.closed())[0] == 1006

    # The page reconnects (1006 is "auto") to another worker with its conversation id. A's
    # lease is still fresh, so B asks it to let go, waits up to 5 s, then takes over.
    again = await web_session(b, cookie, modality="text", conversation=web.conversation)
    ready = again.events[-1]
    assert (ready["conversation"], ready["resumed"]) == (web.conversation, True)
    assert await again.turn("/history") == "history: 1 user turns"
    await again.ws.close()
    await asyncio.sleep(0.2)
    texts = [
        e.text
        async for e in ConversationEvent.objects.filter(
            conversation_id=web.conversation, kind=Kind.USER_TEXT
        ).order_by("seq")
    ]
    assert texts == ["remember the blue door", "/history"]
