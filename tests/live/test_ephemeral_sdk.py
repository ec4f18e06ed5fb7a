"""Ephemeral tokens through the official google-genai SDK, unchanged: a backend mints one
with `auth_tokens.create` and a Pastra access token against Pastra (daphne over TLS); a
client connects with it (`api_version="v1alpha"`, the Constrained socket) through Pastra to
the emulator. Uses, both expiry times, the locked model and fields, revocation and quotas
are enforced, each with its close code and reason (docs/ephemeral-tokens.md)."""

import asyncio
import datetime as dt
import ssl
import warnings

import pytest
from asgiref.sync import sync_to_async
from google import genai
from google.genai import errors, types

from assistant import services
from assistant.models import AccessToken, Conversation, EphemeralToken
from tests.live.conftest import MODEL, TEXT_MODEL, setups

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("settled"),
    pytest.mark.filterwarnings("ignore::google.genai.errors.ExperimentalWarning"),
]

AUDIO = {"response_modalities": ["AUDIO"]}
WITH_TRANSCRIPT = {**AUDIO, "output_audio_transcription": {}}


def sdk(server, tls_files, key: str) -> genai.Client:
    context = ssl.create_default_context(cafile=tls_files[0])
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(
            base_url=server.base_url + "/",
            api_version="v1alpha",
            client_args={"verify": context},
            async_client_args={"ssl": context},
        ),
    )


def soon(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


@pytest.fixture
def mint(pastra_tls, tls_files, alice_token):
    """`await mint(**CreateAuthTokenConfig)`: the token's name, minted by alice's backend."""

    async def make(**config) -> str:
        backend = sdk(pastra_tls, tls_files, alice_token)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            token = await asyncio.to_thread(
                backend.auth_tokens.create, config=types.CreateAuthTokenConfig(**config)
            )
        assert token.name.startswith("auth_tokens/")
        return token.name

    return make


async def turn(session, text: str) -> tuple[str, list]:
    """(output transcript, messages) of one model turn after `text`."""
    await session.send_realtime_input(text=text)
    words, messages = [], []
    async for message in session.receive():
        messages.append(message)
        content = message.server_content
        if content and content.output_transcription and content.output_transcription.text:
            words.append(content.output_transcription.text)
    return "".join(words), messages


async def drain(session) -> None:
    while True:
        async for _ in session.receive():
            pass


async def refused(client, *, model=MODEL, config=None) -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        async with client.aio.live.connect(model=model, config=config or AUDIO) as session:
            await turn(session, "hello")
    return caught.value


async def test_minted_token_connects_through_pastra_and_counts_one_use(
    mint, pastra_tls, tls_files, alice, thread_emulator
):
    name = await mint(uses=1)
    stored = await EphemeralToken.objects.aget(user=alice)
    row = await EphemeralToken.objects.filter(pk=stored.pk).values_list().aget()
    assert name not in str(row)  # only its hash is stored
    assert stored.token_hash == services._hash_token(name)
    assert stored.uses == 1
    assert stored.uses_count == 0

    client = sdk(pastra_tls, tls_files, name)
    async with client.aio.live.connect(model=MODEL, config=WITH_TRANSCRIPT) as session:
        text, _ = await turn(session, "hello with a minted token")
    assert text == "You said: hello with a minted token"

    await stored.arefresh_from_db()
    assert stored.uses_count == 1
    conversation = await Conversation.objects.aget(user=alice)
    assert conversation.client_kind == Conversation.ClientKind.SDK

    before = setups(thread_emulator)
    error = await refused(client)
    assert error.code == 1008
    assert "no uses left" in str(error)
    assert setups(thread_emulator) == before  # refused before anything went upstream


async def test_resuming_counts_no_use(mint, pastra_tls, tls_files):
    client = sdk(pastra_tls, tls_files, await mint(uses=1))

    def config(handle=None):
        return {**WITH_TRANSCRIPT, "session_resumption": {"handle": handle}}

    handle = None
    async with client.aio.live.connect(model=MODEL, config=config()) as session:
        await turn(session, "first")
        async for message in session.receive():
            update = message.session_resumption_update
            if update and update.resumable and update.new_handle:
                handle = update.new_handle
                break
    assert handle
    async with client.aio.live.connect(model=MODEL, config=config(handle)) as session:
        text, _ = await turn(session, "/history")
    assert text == "history: 1 user turns"


async def test_unlimited_uses(mint, pastra_tls, tls_files):
    client = sdk(pastra_tls, tls_files, await mint(uses=0))
    for _ in range(2):
        async with client.aio.live.connect(model=MODEL, config=WITH_TRANSCRIPT) as session:
            text, _ = await turn(session, "again")
        assert text == "You said: again"


async def test_new_session_expire_time_refuses_later_sessions(mint, pastra_tls, tls_files):
    name = await mint(new_session_expire_time=soon(1.0))
    await asyncio.sleep(1.2)

    error = await refused(sdk(pastra_tls, tls_files, name))

    assert error.code == 1008
    assert "newSessionExpireTime has passed" in str(error)


async def test_expire_time_ends_an_open_session(mint, pastra_tls, tls_files, alice):
    client = sdk(pastra_tls, tls_files, await mint(expire_time=soon(3.0)))
    async with client.aio.live.connect(model=MODEL, config=WITH_TRANSCRIPT) as session:
        text, _ = await turn(session, "before expiry")
        assert text == "You said: before expiry"
        with pytest.raises(errors.APIError) as caught:
            await asyncio.wait_for(drain(session), 10)
    assert caught.value.code == 1007
    assert "expireTime has passed" in str(caught.value)
    conversation = await Conversation.objects.aget(user=alice)
    assert conversation.status == Conversation.Status.ENDED  # an expiry is no failure


async def test_locked_model_is_enforced(mint, pastra_tls, tls_files):
    # lock_additional_fields=[]: only what the constraints set (the model) is locked.
    name = await mint(uses=0, live_connect_constraints={"model": MODEL}, lock_additional_fields=[])
    client = sdk(pastra_tls, tls_files, name)

    error = await refused(client, model=TEXT_MODEL)

    assert error.code == 1008
    assert f"locked to models/{MODEL}" in str(error)
    async with client.aio.live.connect(model=MODEL, config=WITH_TRANSCRIPT) as session:
        text, _ = await turn(session, "right model")
    assert text == "You said: right model"


def voice(name: str) -> dict:
    return {"voice_config": {"prebuilt_voice_config": {"voice_name": name}}}


async def test_whole_setup_lock_replaces_the_clients_setup(mint, pastra_tls, tls_files, alice):
    locked = types.LiveConnectConfig(
        response_modalities=["AUDIO"], speech_config=voice("Kore"), output_audio_transcription={}
    )
    name = await mint(live_connect_constraints={"model": MODEL, "config": locked})
    client = sdk(pastra_tls, tls_files, name)

    # The client asks for another voice and no transcript: the token's setup wins.
    config = {**AUDIO, "speech_config": voice("Puck")}
    async with client.aio.live.connect(model=MODEL, config=config) as session:
        text, _ = await turn(session, "whose setup")
    assert text == "You said: whose setup"  # a transcript only the token's setup asked for
    conversation = await Conversation.objects.aget(user=alice)
    assert conversation.voice == "Kore"


async def test_masked_fields_come_from_the_token_and_conflicts_are_refused(
    mint, pastra_tls, tls_files, alice, thread_emulator
):
    locked = types.LiveConnectConfig(speech_config=voice("Kore"))
    name = await mint(
        uses=0,
        live_connect_constraints={"model": MODEL, "config": locked},
        lock_additional_fields=[],
    )
    client = sdk(pastra_tls, tls_files, name)

    before = setups(thread_emulator)
    error = await refused(client, config={**AUDIO, "speech_config": voice("Puck")})
    assert error.code == 1007
    assert "locked by the token's field_mask: generationConfig.speechConfig" in str(error)
    assert setups(thread_emulator) == before

    # Unmasked fields stay the client's (its transcript); the masked voice is the token's.
    async with client.aio.live.connect(model=MODEL, config=WITH_TRANSCRIPT) as session:
        text, _ = await turn(session, "masked")
    assert text == "You said: masked"
    conversation = await Conversation.objects.aget(user=alice)
    assert conversation.voice == "Kore"


async def test_revoked_ephemeral_token_is_refused(mint, pastra_tls, tls_files, alice):
    name = await mint(uses=0)
    token = await EphemeralToken.objects.aget(user=alice)
    await sync_to_async(services.ephemeral_token_revoke)(user=alice, token_id=token.pk)

    error = await refused(sdk(pastra_tls, tls_files, name))

    assert error.code == 1007
    assert "revoked" in str(error)


async def test_revoked_access_token_stops_its_ephemeral_tokens(mint, pastra_tls, tls_files, alice):
    name = await mint(uses=0)
    minter = await AccessToken.objects.aget(user=alice)
    await sync_to_async(services.access_token_revoke)(user=alice, token_id=minter.pk)

    error = await refused(sdk(pastra_tls, tls_files, name))

    assert error.code == 1007
    assert "the access token that minted it was revoked" in str(error)


async def test_owner_over_quota_mints_but_the_session_is_refused(
    mint, pastra_tls, tls_files, alice
):
    alice.daily_seconds = 0
    await alice.asave()

    name = await mint(uses=1)
    error = await refused(sdk(pastra_tls, tls_files, name))

    assert error.code == 1008
    assert "today's" in str(error)
    token = await EphemeralToken.objects.aget(user=alice)
    assert token.uses_count == 0  # a refused session counts no use


async def test_refusals_at_minting_are_google_shaped(pastra_tls, tls_files, alice_token):
    backend = sdk(pastra_tls, tls_files, alice_token)
    with pytest.raises(errors.ClientError) as caught:
        backend.auth_tokens.create(
            config=types.CreateAuthTokenConfig(live_connect_constraints={"model": "nope-model"})
        )
    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    assert "models/nope-model" in str(caught.value)

    stranger = sdk(pastra_tls, tls_files, "pst_nope")
    with pytest.raises(errors.ClientError) as caught:
        stranger.auth_tokens.create(config=types.CreateAuthTokenConfig(uses=1))
    assert caught.value.code == 400
    assert caught.value.message == "API key not valid. Please pass a valid API key."
