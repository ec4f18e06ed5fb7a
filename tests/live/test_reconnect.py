"""Upstream lifecycle: goAway handover, abnormal closes, retries, client-side resume."""

import pytest

from assistant.models import Conversation, ConversationEvent
from tests.live.conftest import (
    gemini_client,
    gemini_recv,
    gemini_until,
    receive_close,
    receive_until,
    said,
    setups,
    start_web,
    turn_complete,
    wait_for,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)
Kind = ConversationEvent.Kind


async def states_until_ready(comm):
    got = await receive_until(comm, lambda e: e["type"] == "session" and e["state"] == "ready")
    return [e["state"] for e in got.of("session")]


async def test_goaway_hands_over_and_keeps_history(alice, emulator):
    comm = web_client(alice)
    ready = await start_web(comm)
    for text in ("one", "two"):
        await web_turn(comm, text)
    await comm.send_json_to({"type": "text", "text": "/goaway"})
    assert await states_until_ready(comm) == ["reconnecting", "ready"]
    got = await web_turn(comm, "/history")
    assert got.finals("model") == ["history: 2 user turns"]
    assert setups(emulator) == 2
    await comm.disconnect()
    events = [
        e async for e in ConversationEvent.objects.filter(conversation_id=ready["conversation"])
    ]
    session = [e.text for e in events if e.kind == Kind.SESSION]
    assert session == ["started", "go_away", "reconnected", "ended"]
    user = [e.text for e in events if e.kind == Kind.USER_TEXT]
    assert user == ["one", "two", "/goaway", "/history"]


async def test_upstream_1011_is_retried_transparently(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    await web_turn(comm, "remember me")
    await comm.send_json_to({"type": "text", "text": "/close 1011 Internal error encountered."})
    assert await states_until_ready(comm) == ["reconnecting", "ready"]
    got = await web_turn(comm, "/history")
    assert got.finals("model") == ["history: 1 user turns"]
    await comm.disconnect()


async def test_upstream_1007_ends_the_session_with_a_reason(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    await comm.send_json_to(
        {"type": "text", "text": "/close 1007 Request contains an invalid argument."}
    )
    events, code = await receive_close(comm)
    assert code == 4503
    assert events[-1]["type"] == "error"
    assert "invalid argument" in events[-1]["message"]
    assert setups(emulator) == 1  # no retry loop
    await comm.disconnect()
    conversation = await Conversation.objects.aget(user=alice)
    assert conversation.status == Conversation.Status.FAILED
    assert conversation.has_errors


async def test_upstream_down_gives_a_clear_error_after_retries(alice, emulator, live_settings):
    await emulator.stop()
    comm = web_client(alice)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "start"})
    events, code = await receive_close(comm, seconds=15)
    assert code == 4502
    assert [e["state"] for e in events if e["type"] == "session"] == ["connecting"]
    assert "unreachable" in events[-1]["message"]
    await comm.disconnect()


async def test_gemini_client_never_sees_goaway_or_reconnects(alice_token, emulator):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": "gemini-3.8-live", "outputAudioTranscription": {}}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "one"}})
    await gemini_until(comm, turn_complete)
    await comm.send_json_to({"realtimeInput": {"text": "/goaway"}})
    await wait_for(lambda: setups(emulator) == 2)
    await comm.send_json_to({"realtimeInput": {"text": "/close 1011 boom"}})
    await wait_for(lambda: setups(emulator) == 3)
    await comm.send_json_to({"realtimeInput": {"text": "/history"}})
    got = await gemini_until(comm, turn_complete)
    assert said(got) == "history: 1 user turns"
    assert all(set(m) <= {"serverContent", "usageMetadata"} for m in got), got
    await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_gemini_upstream_rejection_is_passed_through(alice_token, emulator):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": "gemini-3.8-live"}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to(
        {"realtimeInput": {"text": "/close 1008 Requested entity was not found"}}
    )
    msg = await gemini_recv(comm)
    assert msg == {"__close__": 1008, "reason": "Requested entity was not found"}
    await comm.disconnect()


async def test_web_client_resumes_its_conversation_on_a_new_socket(alice, emulator):
    first = web_client(alice)
    ready = await start_web(first)
    await web_turn(first, "before the drop")
    await first.disconnect()
    second = web_client(alice)
    again = await start_web(second, conversation=ready["conversation"])
    assert again["conversation"] == ready["conversation"]
    assert again["resumed"] is True
    got = await web_turn(second, "/history")
    assert got.finals("model") == ["history: 1 user turns"]
    await second.disconnect()
    turns = [
        e.turn
        async for e in ConversationEvent.objects.filter(
            conversation_id=ready["conversation"], kind=Kind.USER_TEXT
        ).order_by("seq")
    ]
    assert turns == [1, 2]


async def test_resume_while_the_old_socket_is_open_supersedes_it(alice, emulator):
    first = web_client(alice)
    ready = await start_web(first)
    await web_turn(first, "hello")
    second = web_client(alice)
    again = await start_web(second, conversation=ready["conversation"])
    assert again["resumed"] is True
    _events, code = await receive_close(first)
    assert code == 4409
    got = await web_turn(second, "/history")
    assert got.finals("model") == ["history: 1 user turns"]
    await first.disconnect()
    await second.disconnect()


async def test_resuming_someone_elses_conversation_is_refused(alice, bob, emulator):
    first = web_client(alice)
    ready = await start_web(first)
    await first.disconnect()
    comm = web_client(bob)
    await comm.connect()
    await comm.send_json_to({"type": "start", "conversation": ready["conversation"]})
    events, code = await receive_close(comm)
    assert code == 4404
    assert events[-1]["type"] == "error"
    await comm.disconnect()
    assert setups(emulator) == 1


# --- goAway during a turn: the handover waits for the turn and the update that follows it ---


async def test_goaway_mid_turn_keeps_every_turn_web(alice, start_emulator):
    emulator = await start_emulator(reply_delay=0.3)
    comm = web_client(alice)
    ready = await start_web(comm)
    await web_turn(comm, "one")
    await comm.send_json_to({"type": "text", "text": "two"})
    await comm.send_json_to({"type": "text", "text": "/goaway"})  # "two" is still being answered
    got = await receive_until(comm, lambda e: e["type"] == "session" and e["state"] == "ready")
    assert got.types().index("turn.complete") < got.types().index("session")
    assert got.finals("model") == ["You said: two"]  # the reply arrived whole, then the swap
    got = await web_turn(comm, "/history")
    # The emulator received "/goaway" mid-turn: it is in the handle issued after "two".
    assert got.finals("model") == ["history: 3 user turns"]
    assert setups(emulator) == 2
    await comm.disconnect()
    session = [
        e.text
        async for e in ConversationEvent.objects.filter(
            conversation_id=ready["conversation"], kind=Kind.SESSION
        ).order_by("seq")
    ]
    assert session == ["started", "go_away", "reconnected", "ended"]  # no turn_cut


async def test_goaway_mid_turn_keeps_every_turn_gemini(alice_token, start_emulator):
    emulator = await start_emulator(reply_delay=0.3)
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": "gemini-3.8-live", "outputAudioTranscription": {}}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "one"}})
    await gemini_until(comm, turn_complete)
    await comm.send_json_to({"realtimeInput": {"text": "two"}})
    await comm.send_json_to({"realtimeInput": {"text": "/goaway"}})
    got = await gemini_until(comm, turn_complete)
    assert said(got) == "You said: two"
    await wait_for(lambda: setups(emulator) == 2)
    await comm.send_json_to({"realtimeInput": {"text": "/history"}})
    got = await gemini_until(comm, turn_complete)
    assert said(got) == "history: 3 user turns"
    await comm.disconnect()


class ScriptedUpstream:
    """A minimal Gemini Live server for one race: on the first user message it sends goAway,
    a short reply, turnComplete and, `update_delay` seconds later (None: never), the
    resumption update for that turn. Records every setup it receives."""

    def __init__(self, update_delay: float | None) -> None:
        self.update_delay = update_delay
        self.setups: list[dict] = []
        self.url = ""
        self._server = None

    async def __aenter__(self):
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws):
        import asyncio

        import orjson

        self.setups.append(orjson.loads(await ws.recv())["setup"])
        send = lambda msg: ws.send(orjson.dumps(msg).decode())  # noqa: E731
        await send({"setupComplete": {}})
        await send({"sessionResumptionUpdate": {"newHandle": "h-before", "resumable": True}})
        async for raw in ws:
            if len(self.setups) > 1 or "realtimeInput" not in orjson.loads(raw):
                continue
            await send({"goAway": {"timeLeft": "10s"}})
            await send({"serverContent": {"outputTranscription": {"text": "Hi."}}})
            await send({"serverContent": {"turnComplete": True}})
            if self.update_delay is not None:
                await asyncio.sleep(self.update_delay)
                await send({"sessionResumptionUpdate": {"newHandle": "h-after", "resumable": True}})


@pytest.mark.parametrize(("update_delay", "handle"), [(0.3, "h-after"), (None, "h-before")])
async def test_goaway_handover_resumes_with_the_update_after_turn_complete(
    alice, live_settings, update_delay, handle
):
    async with ScriptedUpstream(update_delay) as upstream:
        live_settings.PASTRA_UPSTREAM_URL = upstream.url
        comm = web_client(alice)
        await start_web(comm)
        await comm.send_json_to({"type": "text", "text": "hello"})
        got = await receive_until(
            comm, lambda e: e["type"] == "session" and e["state"] == "ready", seconds=5
        )
        assert "turn.complete" in got.types()
        assert [s["sessionResumption"].get("handle") for s in upstream.setups] == [None, handle]
        await comm.disconnect()
