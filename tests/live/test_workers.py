"""Two daphne worker processes sharing a real Redis channel layer and the test database:
`manage.py end_session` (a third process) ends sessions on both; a conversation resumed on
one worker supersedes its old socket on the other. Also: a foreign Origin and a missing
cookie on a real server never open an upstream."""

import os
import subprocess
import sys
import uuid

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live.conftest import GEMINI_WS, MODEL, ROOT, Daphne, database_url, said, setups

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("settled"),
]


@pytest.fixture
def redis_workers(thread_emulator, tmp_path):
    env = {
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "PASTRA_CHANNEL_PREFIX": f"pastra-test-{uuid.uuid4().hex[:8]}",
        "PASTRA_UPSTREAM_URL": thread_emulator.url,
    }
    workers = [Daphne(env, tmp_path, name=name) for name in ("a", "b")]
    yield env, workers
    for worker in workers:
        worker.stop()


async def gemini_session(worker, token, setup=None):
    ws = await connect(
        worker.ws_url + GEMINI_WS,
        additional_headers={"x-goog-api-key": token},
        compression=None,
        open_timeout=10,
    )
    await ws.send(orjson.dumps({"setup": {"model": MODEL, **(setup or {})}}).decode())
    assert orjson.loads(await ws.recv()) == {"setupComplete": {}}
    return ws


async def until_closed(ws) -> tuple[int, str]:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code, closed.rcvd.reason


async def turn(ws, text: str) -> list[dict]:
    await ws.send(orjson.dumps({"realtimeInput": {"text": text}}).decode())
    got = []
    while True:
        msg = orjson.loads(await ws.recv())
        got.append(msg)
        if msg.get("serverContent", {}).get("turnComplete"):
            return got


def manage(env: dict, *args: str) -> str:
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "pastra_site.settings"}
    full.update({"DATABASE_URL": database_url(), **env})
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.redis
async def test_end_session_command_reaches_both_workers(redis_workers, alice_token):
    env, (a, b) = redis_workers
    on_a = await gemini_session(a, alice_token)
    on_b = await gemini_session(b, alice_token)
    out = await _run(manage, env, "end_session", "--user", "alice")
    assert out.strip() == "Signalled 2 live sessions."
    assert await until_closed(on_a) == (1008, "Ended by an administrator")
    assert await until_closed(on_b) == (1008, "Ended by an administrator")


@pytest.mark.redis
async def test_resume_on_another_worker_supersedes_the_old_socket(redis_workers, alice_token):
    _, (a, b) = redis_workers
    first = await gemini_session(a, alice_token, {"sessionResumption": {}})
    await turn(first, "kept across workers")
    handle = None
    while handle is None:
        msg = orjson.loads(await first.recv())
        handle = msg.get("sessionResumptionUpdate", {}).get("newHandle")
    resume = {"sessionResumption": {"handle": handle}, "outputAudioTranscription": {}}
    second = await gemini_session(b, alice_token, resume)
    code, reason = await until_closed(first)
    assert code == 1008
    assert "resumed in another window" in reason
    assert said(await turn(second, "/history")) == "history: 1 user turns"
    await second.close()


async def test_real_server_refuses_foreign_origin_and_no_cookie(
    pastra_tls, tls_files, thread_emulator
):
    import ssl

    before = setups(thread_emulator)
    context = ssl.create_default_context(cafile=tls_files[0])
    for origin in ("https://evil.example", f"https://127.0.0.1:{pastra_tls.port}"):
        with pytest.raises(InvalidStatus) as caught:
            async with connect(
                pastra_tls.ws_url + "/ws/live/",
                origin=origin,
                ssl=context,
                open_timeout=10,
            ):
                pass
        assert caught.value.response.status_code == 403
    assert setups(thread_emulator) == before


async def _run(function, *args):
    """On an executor thread, its database connection given back afterwards (the thread ends
    with the test's loop; a pooled connection it held would be a slot lost for the run)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    def run():
        try:
            return function(*args)
        finally:
            connections.close_all()

    return await sync_to_async(run, thread_sensitive=False)()


async def test_sigterm_flushes_the_conversation(thread_emulator, tmp_path, alice, alice_token):
    """Daphne cancels every application on SIGTERM: what was received is recorded."""
    from assistant.models import Conversation, ConversationEvent

    worker = Daphne({"PASTRA_UPSTREAM_URL": thread_emulator.url}, tmp_path, name="term")
    try:
        ws = await gemini_session(worker, alice_token, {"outputAudioTranscription": {}})
        await ws.send(orjson.dumps({"realtimeInput": {"text": "/long"}}).decode())
        while "outputTranscription" not in orjson.loads(await ws.recv()).get("serverContent", {}):
            pass
    finally:
        log = worker.stop()
    assert "live session ended: shutdown" in log
    conversation = await Conversation.objects.aget(user=alice)
    assert conversation.status == Conversation.Status.ENDED
    kinds = [e.kind async for e in ConversationEvent.objects.filter(conversation=conversation)]
    assert ConversationEvent.Kind.USER_TEXT in kinds
    assert ConversationEvent.Kind.OUTPUT_TRANSCRIPT in kinds  # the partial reply
