"""Issue 12, finding 10: a frame over the server's hard limit (1 MiB: daphne's
`--websocket-max-message-size` in the Makefile, the launcher's under uvicorn) is closed with
1009 and Pastra's reason on both paths (autobahn alone drops the TCP connection: the client saw
1006; uvicorn alone gives websockets' reason and may reset the connection), over a real socket
of each server; the worker stays healthy and the next session works."""

import asyncio

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from assistant.live.compat import too_big_reason
from tests.deploy.conftest import (
    both_servers,
    gemini_session,
    gemini_turn,
    in_thread,
    until_closed,
    web_session,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("settled"),
    both_servers,
]

LIMIT = 1048576
OVER = LIMIT + 200_000


def healthy(worker) -> bool:
    """The worker runs, and serves HTTP (any answer: the URL conf is not ours to test)."""
    return worker.proc.poll() is None and httpx.get(worker.base_url + "/healthz").status_code


async def test_gemini_frame_over_the_limit_closes_1009(start_worker, alice_token):
    worker = start_worker("oversize-sdk")
    ws = await gemini_session(worker, alice_token)
    text = orjson.dumps({"realtimeInput": {"text": "x" * OVER}}).decode()
    await ws.send(text)
    assert await until_closed(ws) == (1009, too_big_reason(LIMIT))
    binary = await gemini_session(worker, alice_token)
    await binary.send(b"x" * OVER)
    assert await until_closed(binary) == (1009, too_big_reason(LIMIT))
    # Below the hard limit, over the bridge's own: Pastra's 1009 and its reason.
    big = await gemini_session(worker, alice_token)
    await big.send(orjson.dumps({"realtimeInput": {"text": "x" * 800_000}}).decode())
    code, reason = await until_closed(big)
    assert (code, reason.split(":")[0]) == (1009, "Request payload size exceeds the limit")
    assert await in_thread(healthy, worker)
    again = await gemini_session(worker, alice_token, {"outputAudioTranscription": {}})
    assert await gemini_turn(again, "still here")
    await again.close()


async def test_web_frame_over_the_limit_closes_1009(start_worker, alice, login_cookie):
    worker = start_worker("oversize-web")
    cookie = await login_cookie(alice)
    web = await web_session(worker, cookie)
    await web.ws.send(b"\0" * OVER)
    assert await web.closed() == (1009, too_big_reason(LIMIT))
    text = await web_session(worker, cookie)
    await text.ws.send(orjson.dumps({"type": "text", "text": "x" * OVER}).decode())
    assert await text.closed() == (1009, too_big_reason(LIMIT))
    # Before `start`, too (no session yet).
    bare = await connect(
        worker.ws_url + "/ws/live/",
        origin=worker.base_url,
        additional_headers={"Cookie": cookie},
        compression=None,
    )
    await bare.send("y" * OVER)
    assert await until_closed(bare) == (1009, too_big_reason(LIMIT))
    assert await in_thread(healthy, worker)
    again = await web_session(worker, cookie)
    assert await asyncio.wait_for(again.turn("still here"), 15) == "You said: still here"
    await again.ws.close()
