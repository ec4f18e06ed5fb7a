"""Graceful drain of a worker on SIGTERM, under daphne and uvicorn (Cloud Run gives 10 s,
`docker stop` too):
it stops accepting, closes every live socket with "server restarting" (web 4001, which the UI
reconnects on; Gemini 1012), flushes every transcript and exits within 8 s; the clients then
resume their conversations on another worker."""

import asyncio
import re
import signal
import socket
import time

import orjson
import pytest

from assistant.live.close_codes import CloseCode
from assistant.models import Conversation, ConversationEvent
from tests.deploy.conftest import (
    ROOT,
    both_servers,
    gemini_session,
    gemini_turn,
    in_thread,
    until_closed,
    web_session,
)
from tests.live.conftest import said

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("settled"),
]

Kind = ConversationEvent.Kind
RESTART_REASON = "The server is restarting. Reconnect to continue."
DEADLINE = 8.0


async def next_handle(ws) -> str:
    """The Pastra handle that follows a turnComplete (resumable from any worker)."""
    async with asyncio.timeout(10):
        while True:
            msg = orjson.loads(await ws.recv())
            if handle := msg.get("sessionResumptionUpdate", {}).get("newHandle"):
                return handle


def test_the_web_ui_reconnects_on_the_restart_code():
    js = (ROOT / "static/js/protocol.js").read_text()
    assert f"SERVICE_RESTART: {int(CloseCode.SERVICE_RESTART)}," in js
    assert re.search(r'\[CloseCode\.SERVICE_RESTART, \["auto"', js)


@both_servers
async def test_sigterm_drains_both_paths_and_clients_continue_elsewhere(
    start_worker, alice, bob, login_cookie, make_token
):
    a, b = start_worker("a"), start_worker("b")
    cookie = await login_cookie(alice)
    web = await web_session(a, cookie, modality="audio")
    await web.turn("hello before the restart")
    token = await in_thread(make_token, bob)
    setup = {"sessionResumption": {}, "outputAudioTranscription": {}}
    sdk = await gemini_session(a, token, setup)
    await gemini_turn(sdk, "gemini before the restart")
    handle = await next_handle(sdk)
    # Both mid-reply when the signal comes: the partial replies must be recorded too.
    await web.ws.send(orjson.dumps({"type": "text", "text": "/long"}).decode())
    await web.until(lambda e: e["type"] == "transcript" and e["role"] == "model")
    await sdk.send(orjson.dumps({"realtimeInput": {"text": "/long"}}).decode())
    async with asyncio.timeout(10):
        while "outputTranscription" not in orjson.loads(await sdk.recv()).get("serverContent", {}):
            pass

    started = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    (web_code, web_reason), (sdk_code, sdk_reason) = await asyncio.wait_for(
        asyncio.gather(web.closed(), until_closed(sdk)), DEADLINE
    )
    closed_after = time.monotonic() - started
    with socket.socket() as probe:  # the listening socket is gone first
        assert probe.connect_ex(("127.0.0.1", a.port)) != 0
    exit_code = await in_thread(a.proc.wait, DEADLINE + 2)
    exited_after = time.monotonic() - started
    log = a.stop()

    assert (web_code, web_reason) == (CloseCode.SERVICE_RESTART, RESTART_REASON)
    assert web.events[-1] == {"type": "error", "code": 4001, "message": RESTART_REASON}
    assert (sdk_code, sdk_reason) == (1012, RESTART_REASON)
    assert closed_after < DEADLINE
    assert exit_code == 0
    assert exited_after < DEADLINE, log[-2000:]
    assert "shutdown: stopped listening; draining 2 application instances" in log
    assert "shutdown: drained 2 application instances" in log

    # Every transcript is saved, the cut replies included.
    for user, said_first in (
        (alice, "hello before the restart"),
        (bob, "gemini before the restart"),
    ):
        conversation = await Conversation.objects.aget(user=user)
        assert conversation.status == Conversation.Status.ENDED
        events = [e async for e in conversation.events.order_by("seq")]
        assert [e.text for e in events if e.kind == Kind.USER_TEXT] == [said_first, "/long"]
        assert any(e.kind == Kind.OUTPUT_TRANSCRIPT and e.text for e in events if e.turn == 2)
        assert (events[-1].kind, events[-1].data) == (Kind.SESSION, {"reason": "shutdown"})

    # The clients land on another worker and continue the same conversations.
    web_again = await web_session(b, cookie, modality="text", conversation=web.conversation)
    ready = web_again.events[-1]
    assert (ready["conversation"], ready["resumed"]) == (web.conversation, True)
    # The upstream context is the one of the last handle (after the first turn); the cut
    # `/long` is in the transcript (above), not in the model's context.
    assert await web_again.turn("/history") == "history: 1 user turns"
    sdk_again = await gemini_session(b, token, {**setup, "sessionResumption": {"handle": handle}})
    assert said(await gemini_turn(sdk_again, "/history")) == "history: 1 user turns"
    await web_again.ws.close()
    await sdk_again.close()
