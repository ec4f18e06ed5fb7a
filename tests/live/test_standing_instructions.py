"""The user's standing instructions reach the upstream setup Pastra sends the emulator (over a
real socket), after the deployment's base instruction and the persona, on the web path only."""

import pytest
from asgiref.sync import sync_to_async

from assistant.personas import STANDING_HEADER
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    start_web,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "You are the test deployment's assistant."
PERSONA = "Answer in one short sentence."
STANDING = "Call me Sam. I am learning Italian."


def instruction(setup: dict) -> str:
    return "\n\n".join(p["text"] for p in setup["systemInstruction"]["parts"])


@pytest.fixture
def standing(alice, live_settings):
    live_settings.PASTRA_SYSTEM_INSTRUCTION = BASE
    alice.standing_instructions = STANDING
    alice.save(update_fields=["standing_instructions"])
    return alice


async def test_standing_instructions_follow_the_base_and_the_persona(
    standing, emulator, upstream_setups
):
    comm = web_client(standing)
    await start_web(comm, persona=PERSONA)
    got = await web_turn(comm, "hello")
    assert got.finals("model") == ["You said: hello"]  # the emulator took that setup
    await comm.disconnect()
    (setup,) = upstream_setups
    assert instruction(setup) == f"{BASE}\n\n{PERSONA}\n\n{STANDING_HEADER}\n{STANDING}"


async def test_a_change_applies_from_the_next_session_and_empty_adds_nothing(
    standing, emulator, upstream_setups
):
    standing.standing_instructions = ""
    await sync_to_async(standing.save)(update_fields=["standing_instructions"])
    comm = web_client(standing)
    await start_web(comm)
    await web_turn(comm, "hello")
    await comm.disconnect()
    (setup,) = upstream_setups
    assert instruction(setup) == BASE


async def test_a_gemini_client_keeps_its_own_system_instruction(
    standing, alice_token, emulator, upstream_setups
):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to(
        {
            "setup": {
                "model": f"models/{MODEL}",
                "systemInstruction": {"parts": [{"text": "SDK app's own."}]},
            }
        }
    )
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.disconnect()
    (setup,) = upstream_setups
    assert instruction(setup) == f"{BASE}\n\nSDK app's own."
