"""Ephemeral tokens: `POST /v1alpha/auth_tokens` and the Constrained endpoint, through the SDK.

`client.auth_tokens.create` mints; a client with `api_key="auth_tokens/…"` and v1alpha
connects to BidiGenerateContentConstrained with `Authorization: Token …` (google-genai 3.6.1
live.py). Uses, both expiry times, the locked model and fields are enforced.
"""

import asyncio
import ssl
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google import genai
from google.genai import errors, types

from gemini_emulator import EmulatorConfig, EmulatorThread
from tests.emulator.conftest import DEFAULTS, KEY, MODEL_25, MODEL_38, sdk_transcript, sdk_turn

pytestmark = pytest.mark.filterwarnings("ignore::google.genai.errors.ExperimentalWarning")
TRANSCRIBE = {"output_audio_transcription": {}}
CONSTRAINED = (
    "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
)


def _client(emu, key=KEY, version="v1alpha") -> genai.Client:
    context = ssl.create_default_context(cafile=emu.config.tls_cert)
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(
            base_url=emu.http_url + "/",
            api_version=version,
            async_client_args={"ssl": context},
            client_args={"verify": context},
        ),
    )


async def _mint(emu, **config) -> str:
    token = await _client(emu).aio.auth_tokens.create(config=config)
    assert token.name.startswith("auth_tokens/")
    return token.name


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def _say(client, model=MODEL_38, config=None, text="hello") -> str:
    async with client.aio.live.connect(model=model, config=config or TRANSCRIBE) as session:
        await session.send_realtime_input(text=text)
        return sdk_transcript(await sdk_turn(session))


async def _refused(client, model=MODEL_38, config=None) -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        await _say(client, model, config)
    return caught.value


@pytest.fixture
async def emu(tls_emulator):
    return await tls_emulator()


# --- minting ----------------------------------------------------------------------------------


async def test_sdk_mints_a_token_with_googles_defaults(emu):
    token = await _client(emu).aio.auth_tokens.create(config={})
    assert token.uses == 1
    now = datetime.now(UTC)
    expire = datetime.fromisoformat(token.expire_time.replace("Z", "+00:00"))
    new_session = datetime.fromisoformat(token.new_session_expire_time.replace("Z", "+00:00"))
    assert timedelta(minutes=29) < expire - now <= timedelta(minutes=30)
    assert timedelta(seconds=50) < new_session - now <= timedelta(seconds=60)


def test_sync_sdk_create_works_against_the_emulator(tls_files):
    cert, key = tls_files
    with EmulatorThread(EmulatorConfig(**DEFAULTS, tls_cert=cert, tls_key=key)) as emu:
        client = _client(emu.server)
        token = client.auth_tokens.create(config={"uses": 0, "expire_time": _in(3600)})
        assert token.name.startswith("auth_tokens/")
        assert token.uses == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"uses": -1}, "uses must not be negative."),
        (
            {"expireTime": "tomorrow"},
            "Invalid JSON payload received. Invalid value at 'expire_time'",
        ),
        ({"expireTime": "2001-01-01T00:00:00Z"}, "expire_time must be in the future."),
        ({"expireTime": "+21h"}, "expire_time must be less than 20 hours in the future."),
        ({"newSessionExpireTime": "+21h"}, "new_session_expire_time must be less than 20 hours"),
        ({"colour": "red"}, 'Invalid JSON payload received. Unknown name "colour"'),
        ({"fieldMask": "tools.0"}, "field_mask is invalid for BidiGenerateContentSetup"),
        (
            {
                "bidiGenerateContentSetup": {
                    "model": f"models/{MODEL_38}",
                    "generationConfig": {"temperature": 0.2},
                },
                "fieldMask": "model",
            },
            "BidiGenerateContentSetup contains fields that are not specified in field_mask",
        ),
    ],
)
async def test_bad_create_requests_get_googles_400_error_shape(emu, body, message):
    for field in ("expireTime", "newSessionExpireTime"):
        if body.get(field) == "+21h":
            body = {**body, field: _in(21 * 3600)}
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=emu.config.tls_cert)
    ) as http:
        reply = await http.post(
            emu.http_url + "/v1alpha/auth_tokens", json=body, headers={"x-goog-api-key": KEY}
        )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].startswith(message)


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [({}, {}, 403), ({"key": "wrong"}, {}, 400), ({}, {"x-goog-api-key": "wrong"}, 400)],
)
async def test_create_needs_the_emulator_api_key(emu, params, headers, status):
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=emu.config.tls_cert)
    ) as http:
        reply = await http.post(
            emu.http_url + "/v1alpha/auth_tokens", json={}, params=params, headers=headers
        )
    assert reply.status_code == status
    assert reply.json()["error"]["code"] == status
    reply_ok = None
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=emu.config.tls_cert)
    ) as http:
        reply_ok = await http.post(
            emu.http_url + "/v1alpha/auth_tokens", json={}, params={"key": KEY}
        )
    assert reply_ok.status_code == 200


# --- using a token ---------------------------------------------------------------------------


async def test_sdk_connects_with_a_token_and_its_uses_run_out(emu):
    name = await _mint(emu, uses=2)
    client = _client(emu, name)
    assert await _say(client) == "You said: hello"
    assert await _say(client) == "You said: hello"
    error = await _refused(client)
    assert (error.code, "Auth token has no uses left." in str(error)) == (1008, True)


async def test_sdk_unlimited_uses(emu):
    client = _client(emu, await _mint(emu, uses=0))
    for _ in range(3):
        assert await _say(client) == "You said: hello"


async def test_an_unknown_token_closes_1008_like_googles_rejected_access_token(emu):
    # (A plain API key on Constrained: tests/emulator/test_handshake.py, same close.)
    error = await _refused(_client(emu, "auth_tokens/made-up"))
    assert error.code == 1008
    assert "Method doesn't allow unregistered callers" in str(error)


async def test_a_token_on_the_plain_endpoint_is_not_an_api_key(tls_emulator):
    from websockets.asyncio.client import connect

    emu = await tls_emulator(api_key="")  # any key would do here, but not a token
    name = await _mint(emu)
    url = emu.url + "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    context = ssl.create_default_context(cafile=emu.config.tls_cert)
    async with connect(f"{url}?key={name}", ssl=context) as ws:
        await ws.send('{"setup": {"model": "models/gemini-3.8-live"}}')
        await asyncio.wait_for(ws.wait_closed(), 5)
    assert (ws.close_code, ws.close_reason) == (
        1007,
        "API key not valid. Please pass a valid API key.",
    )


async def test_new_session_window_and_expiry(emu):
    client = _client(emu, await _mint(emu, uses=0, new_session_expire_time=_in(0.4)))
    assert await _say(client) == "You said: hello"
    await asyncio.sleep(0.5)
    error = await _refused(client)
    assert error.code == 1008
    assert "newSessionExpireTime has passed" in str(error)


async def test_expire_time_ends_a_running_session_and_refuses_new_ones(emu):
    client = _client(emu, await _mint(emu, uses=0, expire_time=_in(0.6)))
    with pytest.raises(errors.APIError) as caught:  # noqa: PT012 - connect, then the turn
        async with client.aio.live.connect(model=MODEL_38, config=TRANSCRIBE) as session:
            await session.send_realtime_input(text="hello")
            await sdk_turn(session)
            async with asyncio.timeout(3):
                async for _ in session.receive():
                    pass
    assert caught.value.code == 1008
    assert "Auth token expired." in str(caught.value)
    error = await _refused(client)
    assert error.code == 1008
    assert "Auth token expired." in str(error)


async def test_resuming_is_not_a_use_and_works_after_the_new_session_window(emu):
    client = _client(emu, await _mint(emu, uses=1, new_session_expire_time=_in(0.5)))
    config = {"session_resumption": {}, **TRANSCRIBE}
    handle = None
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="first")
        await sdk_turn(session)
        async for message in session.receive():
            if message.session_resumption_update:
                handle = message.session_resumption_update.new_handle
                break
    await asyncio.sleep(0.6)
    resumed = {"session_resumption": {"handle": handle}, **TRANSCRIBE}
    assert await _say(client, config=resumed, text="/history") == "history: 1 user turns"


# --- the locked setup ----------------------------------------------------------------------


async def test_locked_setup_without_mask_replaces_the_clients(emu):
    constraints = {"model": MODEL_38, "config": {"output_audio_transcription": {}}}
    client = _client(emu, await _mint(emu, live_connect_constraints=constraints))
    # The client asks for no transcription; the token's setup wins, so the reply is captioned.
    async with client.aio.live.connect(model=MODEL_38, config={}) as session:
        await session.send_realtime_input(text="hello")
        assert sdk_transcript(await sdk_turn(session)) == "You said: hello"


async def test_a_model_other_than_the_locked_one_is_refused(emu):
    constraints = {"model": MODEL_38, "config": TRANSCRIBE}
    error = await _refused(
        _client(emu, await _mint(emu, live_connect_constraints=constraints)), MODEL_25
    )
    assert error.code == 1008
    assert f"models/{MODEL_25} is not allowed by this auth token" in str(error)


async def test_locked_fields_hold_and_the_others_are_free(emu):
    constraints = {"model": MODEL_38, "config": {"temperature": 0.2}}
    name = await _mint(
        emu, uses=0, live_connect_constraints=constraints, lock_additional_fields=["top_k"]
    )
    client = _client(emu, name)
    # Not locked: the client may add transcription. Locked at the token's value: fine.
    assert await _say(client, config={"temperature": 0.2, **TRANSCRIBE}) == "You said: hello"
    for locked in ({"temperature": 0.9}, {"top_k": 3}):
        error = await _refused(client, config={**locked, **TRANSCRIBE})
        assert error.code == 1007
        assert "contains fields that are locked by field_mask: generation_config." in str(error)


async def test_a_resumed_session_leaves_the_use_for_a_new_one(emu):
    client = _client(emu, await _mint(emu, uses=2))
    config = {"session_resumption": {}, **TRANSCRIBE}
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="first")
        await sdk_turn(session)
        async for message in session.receive():
            if message.session_resumption_update:
                handle = message.session_resumption_update.new_handle
                break
    resumed = {"session_resumption": {"handle": handle}, **TRANSCRIBE}
    assert await _say(client, config=resumed, text="/history") == "history: 1 user turns"
    assert await _say(client) == "You said: hello"  # the second use is still there
    assert (await _refused(client)).code == 1008  # and now they are gone
