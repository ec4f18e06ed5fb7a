"""What the ASGI server decides before or around Pastra, the same under daphne and uvicorn:
a refused handshake is an HTTP 403 (no socket, no upstream), close reasons reach the client
cut to the 123 bytes a close frame carries, no compression is negotiated, and the client's
address is never taken from an X-Forwarded-For it wrote (docs/asgi-server.md, "Settings")."""

import re

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from assistant.live.close_codes import close_reason
from assistant.live.gemini import errors
from tests.deploy.conftest import both_servers, gemini_session, in_thread, until_closed
from tests.live.conftest import GEMINI_WS, MODEL, setups

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("settled"),
    both_servers,
]


async def handshake_status(url: str, **options) -> int:
    try:
        async with connect(url, open_timeout=10, **options):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_a_refused_handshake_is_http_403(start_worker, thread_emulator, alice, login_cookie):
    worker = start_worker("refusals")
    before = setups(thread_emulator)
    web = worker.ws_url + "/ws/live/"
    cookie = {"Cookie": await login_cookie(alice)}
    # No session cookie: the consumer closes (4401) before accepting.
    assert await handshake_status(web, origin=worker.base_url) == 403
    # Another site's page, with the user's cookie: the Origin guard refuses.
    assert (
        await handshake_status(web, origin="https://evil.example", additional_headers=cookie) == 403
    )
    assert await handshake_status(web, origin=worker.base_url, additional_headers=cookie) == 101
    assert setups(thread_emulator) == before


async def test_gemini_refusals_carry_googles_codes_and_reasons_cut_to_123_bytes(
    start_worker, alice_token
):
    worker = start_worker("reasons")
    # No key: as at Google, the upgrade succeeds and the first message is refused.
    ws = await connect(worker.ws_url + GEMINI_WS, compression=None, open_timeout=10)
    await ws.send(orjson.dumps({"setup": {"model": MODEL}}).decode())
    assert len(errors.REASON_NO_KEY.encode()) > 123
    assert await until_closed(ws) == (1008, close_reason(errors.REASON_NO_KEY))
    # A reason cut inside a multi-byte character stays valid UTF-8.
    name = "é" * 80
    ws = await gemini_session(worker, alice_token)
    await ws.send(orjson.dumps({name: {}}).decode())
    code, reason = await until_closed(ws)
    assert (code, reason) == (1007, close_reason(errors.reason_unknown_field(name)))
    assert 120 <= len(reason.encode()) <= 123


async def test_no_compression_is_negotiated(start_worker, alice_token):
    worker = start_worker("deflate")
    async with connect(
        worker.ws_url + GEMINI_WS,
        additional_headers={"x-goog-api-key": alice_token},
        compression="deflate",
        open_timeout=10,
    ) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None


def failed_logins_from_forged_addresses(worker) -> int:
    """Five wrong passwords for alice, each "from" another address in X-Forwarded-For, then
    the right one; its status (429: counted per the real peer, 127.0.0.1)."""
    with httpx.Client(base_url=worker.base_url, timeout=10) as http:
        for attempt in range(6):
            page = http.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
            password = "correct horse battery staple" if attempt == 5 else "wrong"
            response = http.post(
                "/accounts/login/",
                data={"login": "alice", "password": password, "csrfmiddlewaretoken": token},
                headers={"X-Forwarded-For": f"203.0.113.{attempt + 1}"},
            )
    return response.status_code


async def test_a_forged_x_forwarded_for_is_not_trusted(start_worker, alice):
    # No PASTRA_TRUSTED_PROXIES: the peer is the client, whatever X-Forwarded-For says (and
    # the server itself must not rewrite the peer from it: uvicorn would, by default).
    worker = start_worker("forwarded", PASTRA_TRUSTED_PROXIES="")
    assert await in_thread(failed_logins_from_forged_addresses, worker) == 429
