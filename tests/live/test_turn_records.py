"""Issue 12, finding 12: text sent while a reply plays opens a turn of its own in the record,
with its answer (it used to be stored inside the interrupted turn, and its answer in the
next turn without its question). Both client paths, against the emulator's real socket."""

import pytest

from assistant.models import ConversationEvent
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    gemini_until,
    receive_until,
    start_web,
    turn_complete,
    web_client,
)

pytestmark = pytest.mark.django_db(transaction=True)
Kind = ConversationEvent.Kind


async def turns_of(conversation) -> dict[int, list[tuple[str, str]]]:
    turns: dict[int, list[tuple[str, str]]] = {}
    async for event in ConversationEvent.objects.filter(conversation_id=conversation):
        if event.kind in (Kind.USER_TEXT, Kind.OUTPUT_TRANSCRIPT, Kind.INTERRUPTION):
            turns.setdefault(event.turn, []).append((event.kind, event.text))
    return turns


def check(turns: dict) -> None:
    long_turn, next_turn = sorted(turns)[-2:]
    first = turns[long_turn]
    assert first[0] == (Kind.USER_TEXT, "/long")
    assert (Kind.INTERRUPTION, "") in first
    assert all(text != "what now?" for _, text in first), first
    assert turns[next_turn] == [
        (Kind.USER_TEXT, "what now?"),
        (Kind.OUTPUT_TRANSCRIPT, "You said: what now?"),
    ]


async def test_web_text_during_a_reply_is_its_own_turn(alice, start_emulator, settled):
    await start_emulator(pace=4.0)
    comm = web_client(alice)
    ready = await start_web(comm)
    await comm.send_json_to({"type": "text", "text": "/long"})
    got = await receive_until(comm, lambda e: e["type"] == "transcript" and e["role"] == "model")
    await comm.send_json_to({"type": "text", "text": "what now?"})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.events[-1]["interrupted"] is True
    assert "what now?" not in got.finals("user")
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.finals("user")[-1] == "what now?"
    assert got.finals("model")[-1] == "You said: what now?"
    await comm.disconnect()
    check(await turns_of(ready["conversation"]))


async def test_gemini_text_during_a_reply_is_its_own_turn(alice_token, start_emulator, settled):
    from assistant.models import Conversation

    await start_emulator(pace=4.0)
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}"}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "/long"}})
    await gemini_until(comm, lambda m: "modelTurn" in m.get("serverContent", {}))
    await comm.send_json_to({"realtimeInput": {"text": "what now?"}})
    got = await gemini_until(comm, turn_complete)
    assert any(m.get("serverContent", {}).get("interrupted") for m in got)
    await gemini_until(comm, turn_complete)
    await comm.disconnect()
    conversation = await Conversation.objects.filter(user__username="alice").afirst()
    check(await turns_of(conversation.id))
