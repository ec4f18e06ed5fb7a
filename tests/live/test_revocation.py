"""Losing a credential ends the live sockets it opened, at once, with a code and a reason:
an access token revoked (and the ephemeral tokens it minted), a user deactivated, a password
changed (other browsers only) or reset (everything), staff ending a user's sessions; and the
lease renewal as the backstop when the control event is lost. In-process channel layer;
tests/deploy/test_revocation_workers.py does it across two daphne workers over Redis."""

import datetime as dt
import re

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from assistant import control, services
from assistant.live import lease
from assistant.models import AccessToken, Conversation
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    gemini_until,
    receive_close,
    router,
    said,
    start_web,
    turn_complete,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _room(live_settings):
    live_settings.PASTRA_MAX_SESSIONS_PER_USER = 5  # several sockets per user here


PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"
CONSTRAINED = (
    "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
)


async def gemini_open(token: str = "", *, path=None, headers=None):
    comm = gemini_client(token, **({"path": path} if path else {}), headers=headers)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"setup": {"model": MODEL, "outputAudioTranscription": {}}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    return comm


async def gemini_alive(comm) -> None:
    await comm.send_json_to({"realtimeInput": {"text": "still there?"}})
    assert said(await gemini_until(comm, turn_complete)) == "You said: still there?"


async def gemini_closed(comm, seconds: float = 2.0) -> tuple[int, str]:
    msg = await gemini_recv(comm, seconds=seconds)
    while "__close__" not in msg:
        msg = await gemini_recv(comm, seconds=seconds)
    return msg["__close__"], msg["reason"]


async def signed_in(user) -> Client:
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    return browser


def browser_socket(browser: Client) -> WebsocketCommunicator:
    """/ws/live/ as that browser opens it: its session cookie, through Channels' auth."""
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    return WebsocketCommunicator(
        AuthMiddlewareStack(router()), "/ws/live/", headers=[(b"cookie", cookie.encode())]
    )


async def web_closed(comm, seconds: float = 2.0) -> tuple[int, str]:
    events, code = await receive_close(comm, seconds=seconds)
    return code, events[-1]["message"]


def mint(user, access_token: AccessToken) -> str:
    now = timezone.now()
    return services.ephemeral_token_create(
        access_token=access_token,
        uses=0,
        expire_time=now + dt.timedelta(minutes=30),
        new_session_expire_time=now + dt.timedelta(seconds=60),
    )[1]


# --- access tokens ---------------------------------------------------------------------------


async def test_revoking_a_token_on_the_settings_page_ends_its_sessions_and_its_ephemerals(
    alice, emulator
):
    pat, raw = await sync_to_async(services.access_token_create)(user=alice, name="backend")
    _, other_raw = await sync_to_async(services.access_token_create)(user=alice, name="cli")
    ephemeral = await sync_to_async(mint)(alice, pat)
    direct = await gemini_open(raw)
    minted = await gemini_open(
        path=CONSTRAINED, headers=[(b"authorization", f"Token {ephemeral}".encode())]
    )
    untouched = await gemini_open(other_raw)
    browser = await signed_in(alice)
    web = browser_socket(browser)
    await start_web(web)

    response = await sync_to_async(browser.post)(f"/settings/tokens/{pat.pk}/revoke/", follow=True)
    assert "Its open sessions" in response.content.decode()

    reason = "The access token behind this session was revoked."
    assert await gemini_closed(direct) == (1008, reason)
    assert await gemini_closed(minted) == (1008, reason)
    await gemini_alive(untouched)  # another token's session goes on
    assert (await web_turn(web, "hello")).finals("model")  # so does the web UI
    for comm in (direct, minted, untouched, web):
        await comm.disconnect()
    # ... and neither can connect again.
    again = gemini_client(raw)
    await again.connect()
    await again.send_json_to({"setup": {"model": MODEL}})
    assert (await gemini_recv(again))["__close__"] == 1007
    await again.disconnect()


async def test_a_token_revoked_between_connect_and_setup_starts_no_session(alice, emulator):
    pat, raw = await sync_to_async(services.access_token_create)(user=alice, name="backend")
    comm = gemini_client(raw)
    connected, _ = await comm.connect()  # the token is checked here...
    assert connected
    await sync_to_async(services.access_token_revoke)(user=alice, token_id=pat.pk)
    await comm.send_json_to({"setup": {"model": MODEL}})  # ... and again when the lease is taken
    closed = await gemini_recv(comm)
    assert (closed["__close__"], closed["reason"]) == (
        1008,
        "The access token behind this session was revoked.",
    )
    assert not await Conversation.objects.filter(user=alice).aexists()
    await comm.disconnect()


async def test_the_lease_renewal_ends_a_session_whose_token_was_revoked_unsignalled(
    alice, emulator, monkeypatch
):
    """The backstop: a revocation whose control event was lost (layer down) ends the
    session at its next lease renewal."""
    monkeypatch.setattr(lease, "RENEW_SECONDS", 0.3)
    pat, raw = await sync_to_async(services.access_token_create)(user=alice, name="backend")
    comm = await gemini_open(raw)
    await AccessToken.objects.filter(pk=pat.pk).aupdate(revoked_at=timezone.now())  # no signal
    assert await gemini_closed(comm, seconds=3) == (
        1008,
        "The access token behind this session was revoked.",
    )
    await comm.disconnect()


# --- the account ---------------------------------------------------------------------------


async def test_deactivating_a_user_ends_every_socket_of_theirs(alice, alice_token, bob, emulator):
    web = web_client(alice)
    await start_web(web)
    sdk = await gemini_open(alice_token)
    bobs = web_client(bob)
    await start_web(bobs)

    alice.is_active = False
    await alice.asave()  # saved anywhere: the admin, a shell, a script

    assert await web_closed(web) == (4401, "Your account was deactivated.")
    assert await gemini_closed(sdk) == (1008, "Your account was deactivated.")
    assert (await web_turn(bobs, "hi")).finals("model")
    for comm in (web, sdk, bobs):
        await comm.disconnect()


async def test_changing_the_password_ends_other_browsers_only(alice, alice_token, emulator):
    here = await signed_in(alice)
    elsewhere = await signed_in(alice)
    mine, theirs = browser_socket(here), browser_socket(elsewhere)
    await start_web(mine)
    await start_web(theirs)
    sdk = await gemini_open(alice_token)

    response = await sync_to_async(here.post)(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302

    assert await web_closed(theirs) == (
        4401,
        "Your password was changed in another browser. Sign in again.",
    )
    assert (await web_turn(mine, "still here")).finals("model")  # the changer's browser
    await gemini_alive(sdk)  # access tokens do not depend on the password
    assert (await sync_to_async(here.get)("/")).status_code == 200  # still signed in
    for comm in (mine, theirs, sdk):
        await comm.disconnect()


async def test_resetting_the_password_by_email_ends_everything(alice, alice_token, emulator):
    browser = await signed_in(alice)
    web = browser_socket(browser)
    await start_web(web)
    sdk = await gemini_open(alice_token)

    stranger = Client()  # the reset happens signed out, maybe on another device
    await sync_to_async(stranger.post)("/accounts/password/reset/", {"email": alice.email})
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mail.outbox[-1].body)
    form = await sync_to_async(stranger.get)(link.group(1), follow=True)
    response = await sync_to_async(stranger.post)(
        form.redirect_chain[-1][0] if form.redirect_chain else link.group(1),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302

    reason = "Your password was reset. Sign in again."
    assert await web_closed(web) == (4401, reason)
    assert await gemini_closed(sdk) == (1008, reason)
    for comm in (web, sdk):
        await comm.disconnect()


async def test_staff_setting_a_users_password_in_the_admin_ends_everything(
    alice, alice_token, staff, emulator
):
    web = web_client(alice)
    await start_web(web)
    sdk = await gemini_open(alice_token)
    admin = await signed_in(staff)
    response = await sync_to_async(admin.post)(
        f"/admin/assistant/user/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    reason = "Your password was reset. Sign in again."
    assert await web_closed(web) == (4401, reason)
    assert await gemini_closed(sdk) == (1008, reason)
    for comm in (web, sdk):
        await comm.disconnect()


async def test_staff_changing_their_own_password_in_the_admin_keeps_their_browser(
    staff, make_token, emulator
):
    here = await signed_in(staff)
    elsewhere = await signed_in(staff)
    mine, theirs = browser_socket(here), browser_socket(elsewhere)
    await start_web(mine)
    await start_web(theirs)
    response = await sync_to_async(here.post)(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert (await web_closed(theirs))[0] == 4401
    assert (await web_turn(mine, "still here")).finals("model")
    for comm in (mine, theirs):
        await comm.disconnect()


async def test_staff_end_a_users_sessions_from_the_user_list(alice, alice_token, staff, emulator):
    web = web_client(alice)
    await start_web(web)
    sdk = await gemini_open(alice_token)
    admin = await signed_in(staff)
    response = await sync_to_async(admin.post)(
        "/admin/assistant/user/",
        {"action": "end_live_sessions", "_selected_action": [alice.pk]},
        follow=True,
    )
    assert "Signalled 2 live sessions to end." in response.content.decode()
    reason = "Ended by an administrator (stella)"
    assert await web_closed(web) == (4410, reason)
    assert await gemini_closed(sdk) == (1008, reason)
    for comm in (web, sdk):
        await comm.disconnect()


def test_events_spare_the_kept_browser_and_other_paths():
    class Session:
        session_key = "abc"

    event = {"type": "live.end", "reason": "r", "kind": "signed_out", "keep": "abc", "path": "web"}
    assert control.end_for(event, path="web", scope={"session": Session()}) is None
    assert control.end_for(event, path="sdk", scope={}) is None
    end = control.end_for(event, path="web", scope={})
    assert (end.kind, end.message) == (control.SIGNED_OUT, "r")
    forged = control.end_for({"kind": "internal"}, path="web", scope={})
    assert forged.kind == control.ENDED  # an event names no other kind of end
