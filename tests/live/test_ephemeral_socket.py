"""The Constrained socket's credentials, through the consumer: where an ephemeral token may
be presented (`Authorization: Token`, `access_token`, the SDK's `x-goog-api-key`), and what
is refused on which path, each with its close code and reason."""

import asyncio
import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from assistant import services
from assistant.live.close_codes import close_reason
from assistant.live.gemini import errors
from tests.live.conftest import MODEL, gemini_client, gemini_recv, gemini_until, said, turn_complete

pytestmark = pytest.mark.django_db(transaction=True)

CONSTRAINED = (
    "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
)
SETUP = {"setup": {"model": f"models/{MODEL}", "outputAudioTranscription": {}}}


@pytest.fixture
def ephemeral(alice):
    def make(**overrides) -> str:
        pat, _ = services.access_token_create(user=alice, name="backend")
        now = timezone.now()
        values = {
            "uses": 0,
            "expire_time": now + dt.timedelta(minutes=30),
            "new_session_expire_time": now + dt.timedelta(seconds=60),
            **overrides,
        }
        return services.ephemeral_token_create(access_token=pat, **values)[1]

    return sync_to_async(make)


async def talk(comm) -> str:
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to(SETUP)
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "hi"}})
    text = said(await gemini_until(comm, turn_complete))
    await comm.disconnect()
    return text


async def refusal(comm) -> tuple[int, str]:
    connected, _ = await comm.connect()
    assert connected  # as at Google: the upgrade succeeds, the first message is refused
    await comm.send_json_to(SETUP)
    closed = await gemini_recv(comm)
    return closed["__close__"], closed["reason"]


@pytest.mark.parametrize("where", ["authorization", "access_token", "x-goog-api-key"])
async def test_an_ephemeral_token_connects_from_each_place(emulator, ephemeral, where):
    raw = await ephemeral()
    path, headers = CONSTRAINED, []
    if where == "authorization":
        headers = [(b"authorization", f"Token {raw}".encode())]
    elif where == "access_token":
        path += f"?access_token={raw}"
    else:
        headers = [(b"x-goog-api-key", raw.encode())]

    assert await talk(gemini_client(path=path, headers=headers)) == "You said: hi"


async def test_an_access_token_is_refused_on_the_constrained_socket(emulator, alice_token):
    code, reason = await refusal(gemini_client(alice_token, path=CONSTRAINED))
    assert (code, reason) == (1007, errors.REASON_NOT_EPHEMERAL)


async def test_an_ephemeral_token_is_no_api_key_on_the_plain_socket(emulator, ephemeral):
    code, reason = await refusal(gemini_client(await ephemeral()))
    assert (code, reason) == (1007, errors.REASON_BAD_KEY)


async def test_forged_and_missing_tokens(emulator):
    forged = [(b"authorization", b"Token auth_tokens/pse_forged")]
    code, reason = await refusal(gemini_client(path=CONSTRAINED, headers=forged))
    assert code == 1007
    assert "Ephemeral token not valid" in reason
    assert await refusal(gemini_client(path=CONSTRAINED)) == (
        1008,
        close_reason(errors.REASON_NO_KEY),
    )


async def test_a_message_after_expiry_is_refused(emulator, ephemeral):
    raw = await ephemeral(expire_time=timezone.now() + dt.timedelta(seconds=0.5))
    comm = gemini_client(path=CONSTRAINED + f"?access_token={raw}")
    connected, _ = await comm.connect()
    assert connected
    await asyncio.sleep(0.6)
    await comm.send_json_to(SETUP)
    closed = await gemini_recv(comm)
    assert closed["__close__"] == 1007
    assert "expireTime has passed" in closed["reason"]
    assert emulator.stats()["total"]["setups"] == 0
