"""Losing a credential on one worker closes the sockets it opened on every worker within 2 s:
two daphne workers over real Redis and PostgreSQL. A token revoked on worker B's settings
page ends its Gemini-path sessions on A and B; a password changed on B in one browser ends
the user's web socket of another browser on A (the changer's own socket on A goes on); a
user deactivated by a third process (`manage.py shell`) loses every socket on both."""

import re
import time

import httpx
import pytest

from assistant import services
from tests.deploy.conftest import (
    gemini_session,
    gemini_turn,
    in_thread,
    until_closed,
    web_session,
)
from tests.live.conftest import said
from tests.live.test_workers import manage

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.usefixtures("settled"),
]

WITHIN = 2.0  # seconds, from the request that loses the credential to the close frame
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"


async def post_form(worker, cookie: str, page: str, action: str, data: dict) -> httpx.Response:
    """What a browser does: GET the page (CSRF token and cookie), POST the form."""
    name, value = cookie.split("=", 1)
    async with httpx.AsyncClient(base_url=worker.base_url, cookies={name: value}) as http:
        got = await http.get(page)
        assert got.status_code == 200, got.text[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', got.text).group(1)
        return await http.post(
            action,
            data={"csrfmiddlewaretoken": token, **data},
            headers={"Referer": worker.base_url + page, "Origin": worker.base_url},
        )


@pytest.fixture
def two_workers(start_worker, redis_env, live_settings):
    env = {**redis_env, "PASTRA_MAX_SESSIONS_PER_USER": "6"}
    return env, start_worker("a", **env), start_worker("b", **env)


async def test_a_token_revoked_on_b_ends_its_sessions_on_a_and_b_within_2s(
    two_workers, alice, login_cookie
):
    _, a, b = two_workers
    pat, raw = await in_thread(services.access_token_create, user=alice, name="backend")
    _, other = await in_thread(services.access_token_create, user=alice, name="cli")
    on_a, on_b = await gemini_session(a, raw), await gemini_session(b, raw)
    kept = await gemini_session(a, other, {"outputAudioTranscription": {}})

    started = time.monotonic()
    response = await post_form(
        b, await login_cookie(alice), "/settings/tokens/", f"/settings/tokens/{pat.pk}/revoke/", {}
    )
    assert response.status_code == 302
    reason = "The access token behind this session was revoked."
    assert await until_closed(on_a, seconds=WITHIN) == (1008, reason)
    assert await until_closed(on_b, seconds=WITHIN) == (1008, reason)
    elapsed = time.monotonic() - started
    print(f"token revoked on B: sessions on A and B closed in {elapsed:.3f}s")
    assert elapsed < WITHIN
    assert said(await gemini_turn(kept, "still here")) == "You said: still here"
    await kept.close()


async def test_a_password_changed_on_b_ends_the_other_browser_on_a_within_2s(
    two_workers, alice, client, login_cookie
):
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.test import Client

    _, a, b = two_workers
    # The workers' hashers (the tests' own MD5 is not among them).
    alice.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    await alice.asave(update_fields=["password"])
    changer = await login_cookie(alice)  # the `client` fixture's browser
    other_browser = Client()
    await sync_to_async(other_browser.force_login)(alice)
    value = other_browser.cookies[settings.SESSION_COOKIE_NAME].value
    other = f"{settings.SESSION_COOKIE_NAME}={value}"
    mine = await web_session(a, changer, modality="text")
    theirs = await web_session(a, other, modality="text")

    started = time.monotonic()
    response = await post_form(
        b,
        changer,
        "/accounts/password/change/",
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.text[:1000]
    assert await theirs.closed(seconds=WITHIN) == (
        4401,
        "Your password was changed in another browser. Sign in again.",
    )
    elapsed = time.monotonic() - started
    print(f"password changed on B: the other browser's socket on A closed in {elapsed:.3f}s")
    assert elapsed < WITHIN
    assert await mine.turn("still signed in") == "You said: still signed in"
    await mine.ws.close()


async def test_a_user_deactivated_by_a_third_process_loses_every_socket_within_2s(
    two_workers, alice, login_cookie
):
    env, a, b = two_workers
    _, raw = await in_thread(services.access_token_create, user=alice, name="backend")
    cookie = await login_cookie(alice)
    web_a, web_b = await web_session(a, cookie, modality="text"), await web_session(b, cookie)
    sdk_a, sdk_b = await gemini_session(a, raw), await gemini_session(b, raw)

    code = "import time; from assistant.models import User; "
    code += "u = User.objects.get(username='alice'); u.is_active = False; u.save(); "
    code += "print(time.time())"  # the save has committed (autocommit) and signalled

    async def closed_at(closing) -> tuple[tuple[int, str], float]:
        result = await closing
        return result, time.time()

    import asyncio

    reason = "Your account was deactivated."
    waits = [
        asyncio.ensure_future(closed_at(web_a.closed(seconds=30))),
        asyncio.ensure_future(closed_at(web_b.closed(seconds=30))),
        asyncio.ensure_future(closed_at(until_closed(sdk_a, seconds=30))),
        asyncio.ensure_future(closed_at(until_closed(sdk_b, seconds=30))),
    ]
    saved = float((await in_thread(manage, env, "shell", "-c", code)).split()[-1])
    results = await asyncio.gather(*waits)
    assert [code for (code, _), _ in results] == [4401, 4401, 1008, 1008]
    assert {reason_ for (_, reason_), _ in results} == {reason}
    elapsed = max(at for _, at in results) - saved
    print(f"deactivated in a third process: 4 sockets on A and B closed {elapsed:.3f}s after")
    assert elapsed < WITHIN
