"""Admin live view on the in-process layer: the recorder's per-turn broadcast reaches a staff
watcher (and never a live session), non-staff are refused before accept, the page and its
"End session" button, and a broken layer never breaks recording."""

import asyncio
import re

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import re_path

from assistant import control, live_view
from assistant.live import record_writer
from assistant.models import Conversation, ConversationEvent
from assistant.routing import websocket_urlpatterns
from tests.live.conftest import receive_close, start_web, web_client, web_turn, with_user

pytestmark = pytest.mark.django_db(transaction=True)

Kind = ConversationEvent.Kind


def watcher(user, conversation_id, *, after: int = 0) -> WebsocketCommunicator:
    app = URLRouter(
        [
            re_path(
                r"^ws/admin/conversations/(?P<conversation_id>[0-9a-f-]{36})/$",
                live_view.WatchConsumer.as_asgi(),
            )
        ]
    )
    path = f"/ws/admin/conversations/{conversation_id}/?after={after}"
    return WebsocketCommunicator(with_user(app, user), path)


async def watch_until(comm, predicate, *, seconds: float = 10.0) -> list[dict]:
    """Messages from the watcher socket until `predicate(all events so far)` holds."""
    events: list[dict] = []
    async with asyncio.timeout(seconds):
        while not predicate(events):
            message = orjson.loads(await comm.receive_from(timeout=seconds))
            assert message["type"] == "events"
            events += message["events"]
    return events


async def test_watcher_gets_each_turn_as_it_is_recorded(alice, staff, emulator):
    web = web_client(alice)
    ready = await start_web(web, modality="text")
    conversation = ready["conversation"]
    watch = watcher(staff, conversation)
    connected, _ = await watch.connect()
    assert connected
    first = orjson.loads(await watch.receive_from())
    assert first == {"type": "events", "events": [], "status": "active", "end_reason": "",
                     "live": True}  # fmt: skip
    await web_turn(web, "first words")
    events = await watch_until(watch, lambda got: any(e["kind"] == Kind.USER_TEXT for e in got))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["text"] for e in events if e["kind"] == Kind.USER_TEXT] == ["first words"]
    assert any(e["role"] == "model" and e["text"] for e in events)
    seen = events[-1]["seq"]
    await web_turn(web, "second words")
    more = await watch_until(watch, lambda got: any(e["text"] == "second words" for e in got))
    assert more[0]["seq"] == seen + 1  # no gap, no repeat
    await web.send_json_to({"type": "stop"})
    await receive_close(web)
    ended = await watch_until(watch, lambda got: any(e["text"] == "ended" for e in got))
    assert ended[-1]["kind"] == Kind.SESSION
    await watch.disconnect()
    await web.disconnect()


async def test_watcher_catches_up_from_after(alice, staff, emulator):
    web = web_client(alice)
    ready = await start_web(web, modality="text")
    await web_turn(web, "one")
    await web_turn(web, "two")
    events = ConversationEvent.objects.filter(conversation_id=ready["conversation"])
    async with asyncio.timeout(5):  # a turn is written just after it completes, in one batch
        while not await events.filter(text="two").aexists():
            await asyncio.sleep(0.02)
    total = await events.acount()
    watch = watcher(staff, ready["conversation"], after=total - 1)
    assert (await watch.connect())[0]
    message = orjson.loads(await watch.receive_from())
    assert [e["seq"] for e in message["events"]] == [total]
    await watch.disconnect()
    await web.disconnect()


async def test_live_sessions_ignore_watcher_broadcasts(alice, emulator):
    web = web_client(alice)
    ready = await start_web(web, modality="text")
    # Even if one reached the session's own group, the session carries on.
    await get_channel_layer().group_send(
        control.conversation_group(ready["conversation"]),
        live_view.broadcast_message(ready["conversation"], []),
    )
    await web_turn(web, "still here")
    await web.disconnect()


async def test_a_broken_layer_never_breaks_recording(alice, emulator, monkeypatch):
    async def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(live_view, "broadcast", broken)
    monkeypatch.setattr(record_writer, "_broadcast_paused_until", 0.0)
    web = web_client(alice)
    ready = await start_web(web, modality="text")
    await web_turn(web, "recorded anyway")
    await web_turn(web, "and again")
    await web.disconnect()
    texts = [
        e.text
        async for e in ConversationEvent.objects.filter(
            conversation_id=ready["conversation"], kind=Kind.USER_TEXT
        )
    ]
    assert texts == ["recorded anyway", "and again"]
    assert record_writer._broadcast_paused_until > 0  # paused after the failure


# --- who may watch ----------------------------------------------------------------------------


async def test_only_staff_may_watch_and_are_checked_before_accept(alice, staff, client):
    from django.conf import settings

    conversation = await Conversation.objects.acreate(user=alice, model="m")
    path = f"/ws/admin/conversations/{conversation.pk}/"
    router = URLRouter(websocket_urlpatterns)

    async def connect(user=None, origin=b"http://localhost"):
        headers = [(b"origin", origin), (b"host", b"localhost")]
        if user is not None:
            await sync_to_async(client.force_login)(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
        comm = WebsocketCommunicator(router, path, headers=headers)
        result = await comm.connect()
        await comm.disconnect()
        return result

    assert await connect() == (False, live_view.CloseCode.UNAUTHENTICATED)
    assert await connect(alice) == (False, live_view.CloseCode.FORBIDDEN)
    assert (await connect(staff, origin=b"https://evil.example"))[0] is False
    assert (await connect(staff))[0] is True
    missing = watcher(staff, "00000000-0000-0000-0000-000000000000")
    assert await missing.connect() == (False, live_view.CloseCode.NOT_FOUND)


# --- the page ------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_live_page_is_linked_from_the_change_view_and_has_no_inline_script(staff_client, alice):
    conversation = Conversation.objects.create(user=alice, model="m")
    ConversationEvent.objects.create(
        conversation=conversation, seq=1, turn=1, kind=Kind.USER_TEXT, text="<b>hi</b>",
        created_at=conversation.started_at,
    )  # fmt: skip
    live = f"/admin/assistant/conversation/{conversation.pk}/live/"
    change = staff_client.get(f"/admin/assistant/conversation/{conversation.pk}/change/")
    assert change.status_code == 200
    assert live in change.content.decode()
    page = staff_client.get(live)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-socket="/ws/admin/conversations/{conversation.pk}/"' in html
    assert 'data-after="1"' in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html
    assert re.search(r'<script type="module" src="[^"]*staff/admin-live\.js"', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert "End session" in html


def test_non_staff_cannot_open_the_live_page_or_end_a_session(client, alice):
    conversation = Conversation.objects.create(user=alice, model="m")
    client.force_login(alice)
    for response in (
        client.get(f"/admin/assistant/conversation/{conversation.pk}/live/"),
        client.post(f"/admin/assistant/conversation/{conversation.pk}/end-session/"),
    ):
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


async def test_end_session_button_ends_the_live_session(alice, staff, emulator, client):
    web = web_client(alice)
    ready = await start_web(web, modality="text")
    await sync_to_async(client.force_login)(staff)
    url = f"/admin/assistant/conversation/{ready['conversation']}/end-session/"
    assert (await sync_to_async(client.get)(url)).status_code == 405  # POST only
    response = await sync_to_async(client.post)(url, follow=True)
    assert response.status_code == 200
    assert "Signalled the live session to end." in response.content.decode()
    events, code = await receive_close(web)
    assert code == 4410
    assert events[-1]["message"] == "Ended by an administrator (stella)"
    await web.disconnect()
