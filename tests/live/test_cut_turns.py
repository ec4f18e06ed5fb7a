"""Issue 12, finding 11, on the Gemini path: a reply cut by an upstream loss ends as Google
ends an interrupted reply (`interrupted`, then `turnComplete`), and a turn the lost
connection never answered is sent again, once, on the next one (docs/bridge-notes.md).
The upstream is killed for real: its TCP connection is aborted under the bridge."""

import asyncio

import pytest

from assistant.live.session import LiveSession
from assistant.models import ConversationEvent
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    gemini_until,
    said,
    setups,
    turn_complete,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)
Kind = ConversationEvent.Kind


@pytest.fixture
def sessions(monkeypatch):
    """The LiveSessions the consumers start."""
    started: list[LiveSession] = []
    original = LiveSession.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(LiveSession, "__init__", spy)
    return started


def kill_upstream(session: LiveSession) -> None:
    session.link._upstream._ws.transport.abort()  # no close frame: 1006 for the bridge


async def open_session(token):
    comm = gemini_client(token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}", "outputAudioTranscription": {}}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    return comm


async def test_a_cut_reply_ends_interrupted_then_turn_complete(
    alice_token, start_emulator, sessions, settled
):
    emulator = await start_emulator(pace=2.0)
    comm = await open_session(alice_token)
    await comm.send_json_to({"realtimeInput": {"text": "/long"}})
    await gemini_until(comm, lambda m: "modelTurn" in m.get("serverContent", {}))
    kill_upstream(sessions[0])
    got = await gemini_until(comm, lambda m: m.get("serverContent", {}).get("interrupted"))
    assert await gemini_recv(comm) == {"serverContent": {"turnComplete": True}}
    await wait_for(lambda: setups(emulator) == 2)
    await comm.send_json_to({"realtimeInput": {"text": "after"}})
    got = await gemini_until(comm, turn_complete)
    assert said(got) == "You said: after"
    await comm.disconnect()


async def test_an_unanswered_turn_is_sent_again_once(
    alice_token, start_emulator, sessions, settled
):
    emulator = await start_emulator(reply_delay=1.0)
    comm = await open_session(alice_token)
    await comm.send_json_to({"realtimeInput": {"text": "are you there?"}})
    await asyncio.sleep(0.3)  # up there, its reply 1 s away
    assert sessions[0].link._turn_generation == 1  # sent on the first connection
    kill_upstream(sessions[0])
    got = await gemini_until(comm, turn_complete)
    assert said(got) == "You said: are you there?"
    assert setups(emulator) == 2
    await comm.send_json_to({"realtimeInput": {"text": "/history"}})
    assert said(await gemini_until(comm, turn_complete)) == "history: 1 user turns"
    await comm.disconnect()
    events = [
        (e.turn, e.kind, e.text)
        async for e in ConversationEvent.objects.filter(
            conversation_id=sessions[0].conversation_id
        ).exclude(kind=Kind.USAGE)
    ]
    asked = [e for e in events if e[1] == Kind.USER_TEXT and e[2] == "are you there?"]
    answered = [e for e in events if e[1] == Kind.OUTPUT_TRANSCRIPT and "are you there" in e[2]]
    assert len(asked) == 1
    assert len(answered) == 1
    assert asked[0][0] == answered[0][0]  # the question and its answer in one turn
    assert (Kind.SESSION, "turn_resent") in [(kind, text) for _, kind, text in events]
