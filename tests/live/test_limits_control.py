"""Quotas, leases, per-message limits, malformed input, and control over the channel layer
(end_session, logout, admin) on the in-process layer."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.utils import timezone

from assistant import control
from assistant.live import browser_protocol, close_codes
from assistant.models import Conversation, ConversationEvent, SessionLease
from assistant.routing import websocket_urlpatterns
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    receive_close,
    setups,
    silence,
    start_web,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def refused(comm, **start):
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "start", **start})
    events, code = await receive_close(comm)
    await comm.disconnect()
    return events, code


# --- auth and origin --------------------------------------------------------------------


async def test_anonymous_user_is_rejected_before_accept(emulator):
    comm = web_client(AnonymousUser())
    connected, code = await comm.connect()
    assert (connected, code) == (False, 4401)
    assert setups(emulator) == 0


async def test_real_stack_foreign_origin_is_rejected(alice, emulator):
    from channels.routing import URLRouter

    comm = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns),
        "/ws/live/",
        headers=[(b"origin", b"https://evil.example")],
    )
    connected, _ = await comm.connect()
    assert not connected
    assert setups(emulator) == 0


async def test_real_stack_session_cookie_and_origin(alice, emulator, client):
    from channels.routing import URLRouter
    from django.conf import settings

    await sync_to_async(client.force_login)(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [
        (b"origin", b"http://localhost"),
        (b"cookie", cookie.encode()),
        (b"host", b"localhost"),
    ]
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/", headers=headers)
    ready = await start_web(comm)
    assert ready["state"] == "ready"
    await comm.disconnect()
    # Without the cookie: authenticated by nothing, rejected before accept.
    anonymous = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns),
        "/ws/live/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    assert await anonymous.connect() == (False, 4401)
    assert setups(emulator) == 1


# --- malformed and oversize -------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        ("not json", 4400, "not JSON"),
        ('{"type": "dance"}', 4400, "Unknown message type"),
        ('{"type": "text", "text": 5}', 4400, "`text` must be a string"),
        ('{"type": "start", "modality": "smell"}', 4400, "modality"),
    ],
)
async def test_malformed_web_messages_close_with_a_reason(alice, emulator, frame, code, message):
    comm = web_client(alice)
    if '"start"' not in frame:
        await start_web(comm)
    else:
        await comm.connect()
    await comm.send_to(text_data=frame)
    events, closed = await receive_close(comm)
    assert closed == code
    assert message in events[-1]["message"]
    await comm.disconnect()


async def test_oversize_audio_frame(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    await comm.send_to(bytes_data=silence(1100))  # 35 200 bytes > 32 KiB
    events, code = await receive_close(comm)
    assert code == close_codes.CloseCode.TOO_LARGE
    assert "too large" in events[-1]["message"]
    await comm.disconnect()


async def test_message_before_start_and_start_timeout(alice, emulator, monkeypatch):
    comm = web_client(alice)
    await comm.connect()
    await comm.send_json_to({"type": "text", "text": "hi"})
    events, code = await receive_close(comm)
    assert (code, events[-1]["message"]) == (4400, "Send `start` before `text`.")
    await comm.disconnect()
    monkeypatch.setattr(browser_protocol, "START_TIMEOUT_SECONDS", 0.2)
    comm = web_client(alice)
    await comm.connect()
    events, code = await receive_close(comm)
    assert code == 4408
    await comm.disconnect()
    assert setups(emulator) == 0


async def test_control_rate_limit(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    for _ in range(30):
        await comm.send_json_to({"type": "ping"})
    events, code = await receive_close(comm)
    assert code == 4431
    assert "Too many control messages" in events[-1]["message"]
    await comm.disconnect()


# --- quotas and leases ------------------------------------------------------------------


async def test_concurrent_sessions_limit_with_staff_override(alice, emulator):
    first = web_client(alice)
    await start_web(first)
    second = web_client(alice)
    await start_web(second)  # default limit is 2
    events, code = await refused(web_client(alice))
    assert code == 4429
    assert "2 live sessions" in events[-1]["message"]
    alice.max_sessions = 3  # staff raise it for alice
    await alice.asave()
    third = web_client(alice)
    await start_web(third)
    for comm in (first, second, third):
        await comm.disconnect()
    assert await SessionLease.objects.acount() == 0
    assert setups(emulator) == 3


async def test_stale_leases_do_not_count(alice, emulator):
    alice.max_sessions = 1
    await alice.asave()
    conversation = await Conversation.objects.acreate(user=alice, model=MODEL)
    await SessionLease.objects.acreate(
        user=alice,
        conversation=conversation,
        worker="dead:1",
        client_kind="web",
        heartbeat_at=timezone.now() - timedelta(minutes=5),
    )
    comm = web_client(alice)
    await start_web(comm)
    await comm.disconnect()


async def test_gemini_path_quota_refusal_is_1008(alice, alice_token, emulator):
    alice.max_sessions = 1
    await alice.asave()
    first = gemini_client(alice_token)
    await first.connect()
    await first.send_json_to({"setup": {"model": MODEL}})
    assert await gemini_recv(first) == {"setupComplete": {}}
    second = gemini_client(alice_token)
    await second.connect()
    await second.send_json_to({"setup": {"model": MODEL}})
    msg = await gemini_recv(second)
    assert msg["__close__"] == 1008
    assert "live session" in msg["reason"]
    await first.disconnect()
    await second.disconnect()


async def test_daily_allowance_refused_and_enforced_mid_session(alice, emulator):
    from assistant.models import DailyUsage  # the quota ledger (tests/test_quota_ledger.py)

    await DailyUsage.objects.acreate(user=alice, day=timezone.localdate(), seconds=60)
    alice.daily_seconds = 60
    await alice.asave()
    events, code = await refused(web_client(alice))
    assert code == 4430
    assert "1 minute" in events[-1]["message"]
    alice.daily_seconds = 61  # one second left
    await alice.asave()
    comm = web_client(alice)
    await start_web(comm)
    events, code = await receive_close(comm, seconds=5)
    assert code == 4430
    await comm.disconnect()
    assert setups(emulator) == 1


async def test_idle_session_ends(alice, emulator, live_settings):
    live_settings.PASTRA_SESSION_IDLE_SECONDS = 0.5
    comm = web_client(alice)
    await start_web(comm)
    _events, code = await receive_close(comm, seconds=5)
    assert code == 4432
    await comm.disconnect()


# --- control over the channel layer -----------------------------------------------------


async def test_end_sessions_reaches_web_and_gemini_sessions(alice, alice_token, bob, emulator):
    web = web_client(alice)
    ready = await start_web(web)
    sdk = gemini_client(alice_token)
    await sdk.connect()
    await sdk.send_json_to({"setup": {"model": MODEL}})
    assert await gemini_recv(sdk) == {"setupComplete": {}}
    bobs = web_client(bob)
    await start_web(bobs)
    count = await sync_to_async(control.end_sessions)(user_id=alice.pk)
    assert count == 2
    events, code = await receive_close(web)
    assert code == 4410
    assert events[-1] == {"type": "error", "code": 4410, "message": "Ended by an administrator"}
    msg = await gemini_recv(sdk)
    assert msg == {"__close__": 1008, "reason": "Ended by an administrator"}
    await bobs.receive_nothing(timeout=0.2)  # other users are unaffected
    await web_turn(bobs, "still here")
    for comm in (web, sdk, bobs):
        await comm.disconnect()
    conversation = await Conversation.objects.aget(pk=ready["conversation"])
    assert conversation.status == Conversation.Status.ENDED
    assert conversation.end_reason == "Ended by an administrator"


async def test_end_session_command_by_conversation(alice, emulator):
    comm = web_client(alice)
    ready = await start_web(comm)
    out = await sync_to_async(_call)("end_session", "--conversation", ready["conversation"])
    assert out.strip() == "Signalled 1 live session."
    _, code = await receive_close(comm)
    assert code == 4410
    await comm.disconnect()
    out = await sync_to_async(_call)("end_session", "--user", "alice")
    assert out.strip() == "Signalled 0 live sessions."


def _call(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


async def test_logout_ends_the_users_sessions(alice, emulator, client):
    comm = web_client(alice)
    await start_web(comm)
    await sync_to_async(client.force_login)(alice)
    response = await sync_to_async(client.post)("/accounts/logout/")
    assert response.status_code == 302
    events, code = await receive_close(comm)
    assert code == 4410
    assert events[-1]["message"] == "You signed out."
    await comm.disconnect()


async def test_deleting_a_live_conversation_ends_it_and_nothing_is_retried(
    alice, emulator, client, caplog
):
    comm = web_client(alice)
    ready = await start_web(comm)
    await web_turn(comm, "this will be deleted")
    await sync_to_async(client.force_login)(alice)
    response = await sync_to_async(client.post)(f"/conversations/{ready['conversation']}/delete/")
    assert response.status_code == 302
    events, code = await receive_close(comm)
    assert code == 4410
    assert events[-1]["message"] == "This conversation was deleted."
    await comm.disconnect()
    assert not await Conversation.objects.filter(pk=ready["conversation"]).aexists()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


@pytest.mark.parametrize("how", ["delete page", "delete selected"])
async def test_staff_deleting_a_live_conversation_ends_it_first(
    how, alice, staff, emulator, client, caplog
):
    """The admin's delete, one row or "Delete selected", ends the session as the owner's does:
    the user is told why, and the worker stops writing to the record that is going away."""
    comm = web_client(alice)
    ready = await start_web(comm)
    await web_turn(comm, "staff will delete this")
    await sync_to_async(client.force_login)(staff)
    changelist = "/admin/assistant/conversation/"
    if how == "delete page":
        post = (f"{changelist}{ready['conversation']}/delete/", {"post": "yes"})
    else:
        selected = {"action": "delete_selected", "_selected_action": [ready["conversation"]]}
        post = (changelist, {**selected, "post": "yes"})
    response = await sync_to_async(client.post)(*post)
    assert response.status_code == 302
    events, code = await receive_close(comm)
    assert code == 4410
    assert events[-1]["message"] == "This conversation was deleted by an administrator."
    await comm.disconnect()
    assert not await Conversation.objects.filter(pk=ready["conversation"]).aexists()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


async def test_a_record_deleted_under_a_live_session_is_not_retried(alice, emulator, caplog):
    """The race the delete view's end signal cannot close: the session keeps answering and
    the recorder gives up on the missing record at once instead of retrying."""
    comm = web_client(alice)
    ready = await start_web(comm)
    await Conversation.objects.filter(pk=ready["conversation"]).adelete()
    await web_turn(comm, "still answering")
    await web_turn(comm, "and again")
    await comm.disconnect()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, caplog.text
    warnings = [r.getMessage() for r in caplog.records if "deleted while live" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_database_outage_during_a_session_loses_no_turn(alice, emulator, monkeypatch):
    """The database is unreachable for a few writes (restart, failover): the recorder keeps
    the turns queued and retries with backoff; the session carries on meanwhile."""
    from django.db import OperationalError

    from assistant.live import record_writer

    real = record_writer.arecord
    failures = {"left": 3}

    async def flaky(**kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("connection refused")
        return await real(**kwargs)

    monkeypatch.setattr(record_writer, "arecord", flaky)
    monkeypatch.setattr(record_writer, "RETRY_FIRST_SECONDS", 0.05)
    comm = web_client(alice)
    ready = await start_web(comm)
    await web_turn(comm, "said during the outage")
    await web_turn(comm, "and after it")
    await comm.disconnect()
    assert failures["left"] == 0
    texts = [
        e.text
        async for e in ConversationEvent.objects.filter(
            conversation_id=ready["conversation"], kind=ConversationEvent.Kind.USER_TEXT
        ).order_by("seq")
    ]
    assert texts == ["said during the outage", "and after it"]


async def test_turns_unwritable_past_the_end_are_counted_lost(alice, emulator, monkeypatch):
    from django.db import OperationalError

    from assistant import metrics
    from assistant.live import record_writer, recorder

    async def down(**kwargs):
        raise OperationalError("connection refused")

    comm = web_client(alice)
    ready = await start_web(comm)
    monkeypatch.setattr(record_writer, "arecord", down)
    monkeypatch.setattr(record_writer, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(recorder.Recorder.finish, "__defaults__", (0.5,))
    before = metrics.RECORDING_LOST._value.get()
    await web_turn(comm, "never written")
    await comm.disconnect()
    assert metrics.RECORDING_LOST._value.get() - before >= 2  # the user text and the reply
    assert not await ConversationEvent.objects.filter(
        conversation_id=ready["conversation"], text="never written"
    ).aexists()
