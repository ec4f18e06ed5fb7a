"""Setup fields and voices per model (issue 11), through Pastra against the emulator: what the
bridge's capability table says a model refuses is closed 1007 naming the field, before any
upstream is opened; what the model accepts reaches the upstream as the client sent it."""

import pytest

from assistant.live.errors import SessionEnd
from assistant.live.gemini import models
from assistant.live.gemini.setup import ClientSetup, check_fields
from tests.live.conftest import MODEL, gemini_client
from tests.live.test_gemini_socket import expect_close, open_session

pytestmark = pytest.mark.django_db(transaction=True)

MODEL_31 = "gemini-3.1-flash-live-preview"
MODEL_25 = "gemini-2.5-flash-native-audio-preview-12-2025"


@pytest.fixture(autouse=True)
def all_models(live_settings):
    live_settings.PASTRA_ALLOWED_MODELS = [*live_settings.PASTRA_ALLOWED_MODELS, MODEL_31, MODEL_25]
    return live_settings


def voice(name: str) -> dict:
    return {"speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": name}}}}


REFUSED = [
    # gemini-3.8-live page and migration notes, Sept 2026: thinkingConfig not supported,
    # enableAffectiveDialog removed, proactive audio always on.
    (MODEL, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, "thinkingConfig"),
    (MODEL, {"generation_config": {"thinking_config": {}}}, "generationConfig.thinkingConfig"),
    (MODEL, {"generationConfig": {"enableAffectiveDialog": True}}, "enableAffectiveDialog"),
    (MODEL, {"proactivity": {"proactiveAudio": False}}, "proactivity.proactiveAudio false"),
    # gemini-3.1-flash-live-preview page, Mar 2026: no proactive audio, no affective dialog.
    (MODEL_31, {"proactivity": {"proactiveAudio": True}}, "proactivity is not supported"),
    (MODEL_31, {"generationConfig": {"enableAffectiveDialog": True}}, "enableAffectiveDialog"),
    # Voices: the 30 of the native-audio models.
    (MODEL, {"generationConfig": voice("Bogus")}, "voice Bogus is not supported"),
]


@pytest.mark.parametrize(("model", "setup", "named"), REFUSED)
async def test_a_field_the_model_refuses_is_closed_1007_by_name(
    alice_token, emulator, model, setup, named
):
    comm = gemini_client(alice_token)
    assert (await comm.connect())[0]
    await comm.send_json_to({"setup": {"model": f"models/{model}", **setup}})
    close = await expect_close(comm, 1007, named)
    assert close["reason"].startswith("Invalid argument: ")
    assert close["reason"].endswith(f"is not supported by models/{model}.")
    assert emulator.stats()["total"]["setups"] == 0  # refused before any upstream


ACCEPTED = [
    (MODEL, {"proactivity": {"proactiveAudio": True}}),
    (MODEL, {"generationConfig": voice("Sulafat")}),  # one of the 30, not of the old 8
    (MODEL, {"generationConfig": voice("aoede")}),  # names match case-insensitively
    (MODEL_25, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}),
    (MODEL_25, {"generationConfig": {"enableAffectiveDialog": True}}),
    (MODEL_25, {"proactivity": {"proactiveAudio": False}}),
]


@pytest.mark.parametrize(("model", "setup"), ACCEPTED)
async def test_a_field_the_model_accepts_is_passed_on(
    alice_token, emulator, upstream_setups, model, setup
):
    comm = await open_session(alice_token, {**setup, "model": f"models/{model}"})
    (sent,) = upstream_setups
    for key, value in setup.items():
        if key == "generationConfig":
            for name, inner in value.items():
                assert sent["generationConfig"][name] == inner
        else:
            assert sent[key] == value
    await comm.disconnect()


def test_a_model_the_table_does_not_know_is_not_checked():
    setup = ClientSetup(
        model="gemini-9-live",
        body={"generationConfig": {"thinkingConfig": {}, **voice("Anyone")}},
    )
    check_fields(setup, model="gemini-9-live")  # Google decides


def test_every_refusal_in_the_table_is_tested_above():
    """A field added to the table's refusals gets a case here, or this fails."""
    tested = {
        (model, named.split()[0].split(".")[-1])
        for model, _, named in REFUSED
        if not named.startswith("voice")
    }
    for caps in models.MODELS.values():
        for field in caps.refused_setup_fields:
            if caps.name in (MODEL, MODEL_31):
                assert (caps.name, field) in tested, (caps.name, field)
    with pytest.raises(SessionEnd):
        check_fields(ClientSetup(body={"generationConfig": {"thinkingConfig": {}}}), model=MODEL)
