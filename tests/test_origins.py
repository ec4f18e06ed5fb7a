"""The cookie-authenticated sockets (/ws/live/, the staff live view) accept only the site's own
origin or CSRF_TRUSTED_ORIGINS, by scheme, host and port; every look-alike is refused, at the
unit level, through the real routing, and over a real daphne socket. The Gemini-compatible
socket takes any Origin (its token is its only credential)."""

import time

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from assistant import live_view
from assistant.models import Conversation
from assistant.origins import origin_allowed, parse_origin
from assistant.routing import websocket_urlpatterns
from tests.live.conftest import Daphne, database_url, thread_emulator  # noqa: F401 (fixture)

TRUSTED = ["https://app.example.com", "https://*.pastra.example"]


@pytest.fixture(autouse=True)
def _origins(settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    settings.CSRF_TRUSTED_ORIGINS = TRUSTED
    settings.SECURE_SSL_REDIRECT = False
    settings.SECURE_PROXY_SSL_HEADER = None


def scope(host: str | None, *origins: str, **extra) -> dict:
    headers = [(b"host", host.encode())] if host is not None else []
    headers += [(b"origin", o.encode("latin1")) for o in origins]
    return {"type": "websocket", "path": "/ws/live/", "headers": headers, **extra}


SITE = "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        (SITE, "http://127.0.0.1:8000", True),
        # another port of the same host
        (SITE, "http://127.0.0.1:8001", False),
        (SITE, "http://127.0.0.1", False),
        (SITE, "http://127.0.0.1:80", False),
        # another scheme
        (SITE, "https://127.0.0.1:8000", False),
        (SITE, "ws://127.0.0.1:8000", False),
        (SITE, "wss://127.0.0.1:8000", False),
        (SITE, "ftp://127.0.0.1:8000", False),
        # look-alike hosts
        (SITE, "http://127.0.0.1.evil.com:8000", False),
        (SITE, "http://evil-127.0.0.1:8000", False),
        (SITE, "http://evil127.0.0.1:8000", False),
        (SITE, "http://localhost:8000", False),  # allowed host, but not this request's
        # userinfo tricks: an origin never carries userinfo
        (SITE, "http://127.0.0.1:8000@evil.com", False),
        (SITE, "http://evil.com@127.0.0.1:8000", False),
        (SITE, "http://127.0.0.1:8000:@evil.com", False),
        # not an origin at all
        (SITE, "null", False),
        (SITE, "", False),
        (SITE, "127.0.0.1:8000", False),
        (SITE, "http://127.0.0.1:8000/", False),
        (SITE, "http://127.0.0.1:8000/ws/live/", False),
        (SITE, "http://127.0.0.1:8000?x", False),
        (SITE, "http://127.0.0.1:8000#x", False),
        (SITE, "http://127.0.0.1:8000\t", False),
        (SITE, " http://127.0.0.1:8000", False),
        (SITE, "http://127.0.0.1:08000x", False),
        (SITE, "http://127.0.0.1:99999", False),
        (SITE, "http://%31%32%37.0.0.1:8000", False),
        # case does not matter in scheme and host
        (SITE, "HTTP://127.0.0.1:8000", True),
        ("localhost:8000", "Http://LocalHost:8000", True),
        ("LOCALHOST:8000", "http://localhost:8000", True),
        ("localhost:8000", "HTTP://EVIL.COM:8000", False),
        # default ports
        ("localhost", "http://localhost", True),
        ("localhost", "http://localhost:80", True),
        ("localhost:80", "http://localhost", True),
        ("localhost", "http://localhost:8080", False),
        ("localhost", "https://localhost", False),
        # IPv6 literals compare as addresses
        ("[::1]:8000", "http://[::1]:8000", True),
        ("[::1]:8000", "http://[0:0::1]:8000", True),
        ("[::1]:8000", "http://[::2]:8000", False),
        ("[::1]:8000", "http://[::1]:8001", False),
        ("[::1]:8000", "http://[::1]", False),
        ("[::1]:8000", "http://[::ffff:127.0.0.1]:8000", False),
        ("[::1]:8000", "http://[evil]:8000", False),
        # a Host outside ALLOWED_HOSTS (DNS rebinding) is not the site's origin
        ("evil.com:8000", "http://evil.com:8000", False),
        ("127.0.0.1.evil.com:8000", "http://127.0.0.1.evil.com:8000", False),
        # no Host: only CSRF_TRUSTED_ORIGINS can match
        (None, "http://127.0.0.1:8000", False),
        (None, "https://app.example.com", True),
        # CSRF_TRUSTED_ORIGINS: exact scheme, host and port; `*.` means subdomains
        (SITE, "https://app.example.com", True),
        (SITE, "https://app.example.com:443", True),
        (SITE, "http://app.example.com", False),
        (SITE, "https://app.example.com:8443", False),
        (SITE, "https://app.example.com.evil.com", False),
        (SITE, "https://evil-app.example.com", False),
        (SITE, "https://a.pastra.example", True),
        (SITE, "https://a.b.pastra.example", True),
        (SITE, "https://pastra.example", True),  # as Django's CSRF check reads `*.`
        (SITE, "https://evilpastra.example", False),
        (SITE, "https://a.pastra.example.evil.com", False),
        (SITE, "http://a.pastra.example", False),
        (SITE, "https://a.pastra.example:444", False),
    ],
)
def test_origin_rule(host, origin, allowed):
    assert origin_allowed(scope(host, origin)) is allowed


def test_a_missing_origin_is_refused_and_so_are_two():
    assert origin_allowed(scope(SITE)) is False
    assert origin_allowed(scope(SITE, "http://127.0.0.1:8000", "http://127.0.0.1:8000")) is False
    assert origin_allowed(scope(SITE, "http://127.0.0.1:8000", "https://evil.com")) is False


def test_a_host_header_given_twice_is_not_the_site(settings):
    two = scope(SITE, "http://127.0.0.1:8000")
    two["headers"].append((b"host", b"127.0.0.1:8000"))
    assert origin_allowed(two) is False


def test_the_site_is_https_when_the_request_says_so_by_the_trusted_header_or_tls(settings):
    assert origin_allowed(scope("localhost", "https://localhost", scheme="wss"))
    assert not origin_allowed(scope("localhost", "http://localhost", scheme="wss"))
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = scope("localhost", "https://localhost")
    proxied["headers"].append((b"x-forwarded-proto", b"https"))
    assert origin_allowed(proxied)
    plain = scope("localhost", "https://localhost")
    plain["headers"].append((b"x-forwarded-proto", b"http"))
    assert not origin_allowed(plain)
    # Without the proxy setting the header means nothing.
    settings.SECURE_PROXY_SSL_HEADER = None
    assert not origin_allowed(proxied)


def test_with_the_https_redirect_on_only_https_pages_exist(settings):
    settings.SECURE_SSL_REDIRECT = True
    assert origin_allowed(scope("localhost", "https://localhost"))
    assert not origin_allowed(scope("localhost", "http://localhost"))


def test_allowed_hosts_patterns_still_gate_the_host(settings):
    settings.ALLOWED_HOSTS = [".pastra.test"]
    assert origin_allowed(scope("eu.pastra.test", "http://eu.pastra.test"))
    assert not origin_allowed(scope("eu.pastra.test", "http://us.pastra.test"))
    assert not origin_allowed(scope("pastra.test.evil.com", "http://pastra.test.evil.com"))


def test_parse_origin_normalises():
    assert str(parse_origin("HTTPS://Example.COM")) == "https://example.com:443"
    assert str(parse_origin("http://[0:0:0:0:0:0:0:1]:8000")) == "http://[::1]:8000"
    assert parse_origin("https://*.x.test") is None  # wildcards only in settings
    for other in ("ws://x.test:80", "wss://x.test", "file://x.test", "chrome-extension://abc"):
        assert parse_origin(other) is None, other
    assert str(parse_origin("https://*.x.test", wildcard=True)) == "https://*.x.test:443"


# --- through the real routing (Channels' communicator) -------------------------------------------


async def handshake(path: str, headers: list) -> tuple[bool, int]:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path, headers=headers)
    result = await comm.connect()
    await comm.disconnect()
    return result


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin",
    [
        b"http://localhost:8001",
        b"https://localhost:8000",
        b"ws://localhost:8000",
        b"http://localhost.evil.com:8000",
        b"null",
        None,
    ],
)
async def test_routing_refuses_look_alikes_before_auth_on_both_cookie_sockets(origin, alice):
    conversation = await Conversation.objects.acreate(user=alice, model="m")
    for path in ("/ws/live/", f"/ws/admin/conversations/{conversation.pk}/"):
        headers = [(b"host", b"localhost:8000")] + ([(b"origin", origin)] if origin else [])
        # Refused by the Origin check: closed with the denier's plain code, never reaching
        # the consumers' own "not signed in" codes.
        assert await handshake(path, headers) == (False, 1000), (path, origin)


@pytest.mark.django_db(transaction=True)
async def test_routing_passes_the_own_origin_on_to_the_consumers(alice):
    conversation = await Conversation.objects.acreate(user=alice, model="m")
    headers = [(b"host", b"localhost:8000"), (b"origin", b"http://localhost:8000")]
    assert await handshake("/ws/live/", headers) == (False, 4401)  # reached: not signed in
    watch = f"/ws/admin/conversations/{conversation.pk}/"
    assert await handshake(watch, headers) == (False, live_view.CloseCode.UNAUTHENTICATED)


# --- over a real daphne socket -------------------------------------------------------------------


@pytest.fixture
def daphne_site(thread_emulator, tmp_path):  # noqa: F811 (the imported fixture)
    server = Daphne({"PASTRA_UPSTREAM_URL": thread_emulator.url}, tmp_path, name="origins")
    yield server
    server.stop()
    if "postgres" in database_url():  # let its backends exit before the test DB is dropped
        time.sleep(1.0)


async def session_cookie(client, user) -> str:
    from django.conf import settings

    await sync_to_async(client.force_login)(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def opens(url: str, origin: str | None, cookie: str) -> bool:
    """True if the handshake succeeds; False if it is refused with 403."""
    status = 101
    try:
        async with connect(url, origin=origin, additional_headers={"Cookie": cookie}):
            pass
    except InvalidStatus as refused:
        status = refused.response.status_code
    assert status in {101, 403}, status
    return status == 101


@pytest.mark.django_db(transaction=True)
async def test_real_daphne_socket_opens_for_the_own_origin_only(daphne_site, client, staff):
    cookie = await session_cookie(client, staff)
    conversation = await Conversation.objects.acreate(user=staff, model="m")
    port = daphne_site.port
    for path in ("/ws/live/", f"/ws/admin/conversations/{conversation.pk}/"):
        url = daphne_site.ws_url + path
        assert await opens(url, daphne_site.base_url, cookie), path
        assert await opens(url, f"HTTP://127.0.0.1:{port}", cookie), path
        for origin in (
            f"http://127.0.0.1:{port + 1}",
            f"https://127.0.0.1:{port}",
            f"ws://127.0.0.1:{port}",
            f"wss://127.0.0.1:{port}",
            f"http://localhost:{port}",  # an allowed host, but not the one asked for
            f"http://127.0.0.1.evil.com:{port}",
            f"http://evil-127.0.0.1:{port}",
            f"http://evil.com@127.0.0.1:{port}",
            "http://127.0.0.1",
            "null",
            None,
        ):
            assert not await opens(url, origin, cookie), (path, origin)


@pytest.mark.django_db(transaction=True)
async def test_real_daphne_gemini_socket_takes_any_origin(daphne_site, alice):
    from channels.db import database_sync_to_async

    from assistant import services

    _, token = await database_sync_to_async(services.access_token_create)(user=alice, name="o")
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    for origin in ("https://elsewhere.example", "null", None):
        async with connect(f"{daphne_site.ws_url}{path}?key={token}", origin=origin):
            pass
