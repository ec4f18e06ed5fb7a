"""The web path's reading of the newer server fields (turnCompleteReason, waitingForInput,
interimInputTranscription, interactionStatus, voiceActivity, thought parts) and of the new
`start` options (all 30 voices, a language, a camera quality): raw Gemini messages through
ServerView and the WebAdapter into browser events, and `start` through read_start/web_setup."""

from types import SimpleNamespace

import orjson
import pytest

from assistant import personas
from assistant.live import browser_protocol as bp
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini.reasons import reason_text
from assistant.live.gemini.server import parse_server
from assistant.live.gemini.setup import web_setup
from assistant.live.recorder import TurnSummary
from assistant.live.tool_calls import NO_ROUTING


def raw(message: dict) -> bytes:
    return orjson.dumps(message)


# --- ServerView --------------------------------------------------------------------------------


def test_a_refused_turn_is_read_with_its_reason():
    view = parse_server(
        raw(
            {
                "serverContent": {
                    "turnComplete": True,
                    "turnCompleteReason": "PROHIBITED_INPUT_CONTENT",
                    "interactionStatus": "IDLE",
                }
            }
        )
    )
    assert view.turn_complete
    assert view.turn_reason == "PROHIBITED_INPUT_CONTENT"
    assert view.interaction_status == "IDLE"
    assert not view.waiting_for_input


def test_unspecified_values_are_no_reason_and_no_status():
    view = parse_server(
        raw(
            {
                "serverContent": {
                    "turnComplete": True,
                    "turnCompleteReason": "TURN_COMPLETE_REASON_UNSPECIFIED",
                    "interactionStatus": "INTERACTION_STATUS_UNSPECIFIED",
                }
            }
        )
    )
    assert (view.turn_reason, view.interaction_status) == ("", "")


def test_thought_parts_are_a_sign_of_work_never_text_or_audio():
    view = parse_server(
        raw(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [
                            {"text": "**Planning** the user wants a poem", "thought": True},
                            {"thought": True, "thoughtSignature": "c2ln"},
                            {"text": "Here is a poem."},
                        ]
                    }
                }
            }
        )
    )
    assert view.thinking
    assert view.texts == ("Here is a poem.",)
    assert not view.audio


def test_interim_transcription_waiting_and_voice_activity():
    interim = parse_server(raw({"serverContent": {"interimInputTranscription": {"text": "wha"}}}))
    assert interim.interim_input == "wha"
    assert interim.input_text == ""  # not the final transcription
    assert parse_server(raw({"serverContent": {"turnComplete": True}})).interim_input is None
    waiting = parse_server(raw({"serverContent": {"waitingForInput": True}}))
    assert waiting.waiting_for_input
    # On the wire the field is `type` (google-genai 3.6.1 _VoiceActivity_from_mldev).
    start = parse_server(raw({"voiceActivity": {"type": "ACTIVITY_START", "audioOffset": "1s"}}))
    end = parse_server(raw({"voiceActivity": {"voiceActivityType": "ACTIVITY_END"}}))
    vertex = parse_server(
        raw({"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}})
    )
    assert (start.voice_activity, end.voice_activity, vertex.voice_activity) == (
        "start",
        "end",
        "start",
    )


@pytest.mark.parametrize(
    "reason",
    [
        "PROHIBITED_INPUT_CONTENT",
        "RESPONSE_REJECTED",
        "MALFORMED_FUNCTION_CALL",
        "GENERATED_AUDIO_SAFETY",
        "IMAGE_PROHIBITED_INPUT_CONTENT",
        "BLOCKLIST",
        "MAX_REGENERATION_REACHED",
        "SOMETHING_GOOGLE_ADDS_LATER",
        "GENERATED_SOMETHING_NEW",
    ],
)
def test_every_reason_reads_as_a_plain_sentence(reason):
    text = reason_text(reason)
    assert text[0].isupper()
    assert text.endswith(".")
    assert "_" not in text  # never the raw enum


# --- WebAdapter: raw messages to browser events ----------------------------------------------


class Downlink:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.audio: list[bytes] = []

    def put(self, frame, **_):
        self.events.append(orjson.loads(frame))

    def put_audio(self, data):
        self.audio.append(data)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


@pytest.fixture
def adapter():
    from assistant.live.adapters.web import WebAdapter

    web = WebAdapter(user_id=1)
    web.downlink = Downlink()
    web.session = SimpleNamespace(emulate_text=False)
    return web


def feed(adapter, *messages: dict) -> None:
    for message in messages:
        adapter.server_message(parse_server(raw(message)), NO_ROUTING)


def finish(adapter, *, model: str = "", turn: int = 1) -> dict:
    adapter.turn_finished(TurnSummary(turn, "", model, False))
    return adapter.downlink.events[-1]


def test_a_refused_turn_tells_the_page_why_before_it_completes(adapter):
    feed(
        adapter,
        {
            "serverContent": {
                "turnComplete": True,
                "turnCompleteReason": "PROHIBITED_INPUT_CONTENT",
                "interactionStatus": "IDLE",
            }
        },
    )
    complete = finish(adapter)
    events = adapter.downlink.events
    assert events[0] == {
        "type": "turn.reason",
        "reason": "PROHIBITED_INPUT_CONTENT",
        "message": reason_text("PROHIBITED_INPUT_CONTENT"),
    }
    assert complete == {"type": "turn.complete", "turn": 1, "interrupted": False, "status": "IDLE"}
    assert "waiting" not in adapter.downlink.types()


def test_need_more_input_is_waiting_not_a_refusal(adapter):
    feed(
        adapter,
        {
            "serverContent": {
                "turnComplete": True,
                "turnCompleteReason": "NEED_MORE_INPUT",
                "waitingForInput": True,
            }
        },
    )
    finish(adapter)
    assert adapter.downlink.types() == ["waiting", "turn.complete"]
    assert adapter.downlink.events[0]["reason"] == "NEED_MORE_INPUT"


def test_a_reply_cut_for_safety_keeps_its_words_and_says_why(adapter):
    feed(
        adapter,
        {"serverContent": {"outputTranscription": {"text": "Once upon"}}},
        {"serverContent": {"turnComplete": True, "turnCompleteReason": "GENERATED_AUDIO_SAFETY"}},
    )
    finish(adapter, model="Once upon")
    assert adapter.downlink.types() == ["transcript", "turn.reason", "transcript", "turn.complete"]
    assert adapter.downlink.events[2] == {
        "type": "transcript",
        "role": "model",
        "text": "Once upon",
        "final": True,
    }


def test_thinking_is_told_once_per_reply_and_its_text_never_reaches_the_page(adapter):
    thought = {"modelTurn": {"parts": [{"text": "secret reasoning", "thought": True}]}}
    feed(
        adapter,
        {"serverContent": thought},
        {"serverContent": thought},
        {"serverContent": {"outputTranscription": {"text": "Answer."}}},
        {"serverContent": thought},
    )
    assert adapter.downlink.types() == ["thinking", "transcript", "thinking"]
    assert "secret reasoning" not in orjson.dumps(adapter.downlink.events).decode()
    assert not adapter.downlink.audio


def test_interim_words_and_voice_activity_reach_the_page(adapter):
    feed(
        adapter,
        {"voiceActivity": {"type": "ACTIVITY_START"}},
        {"serverContent": {"interimInputTranscription": {"text": "what is"}}},
        {"serverContent": {"interimInputTranscription": {"text": "what is the"}}},
        {"serverContent": {"inputTranscription": {"text": "what is the time"}}},
        {"voiceActivity": {"type": "ACTIVITY_END"}},
    )
    assert adapter.downlink.events == [
        {"type": "voice", "activity": "start"},
        {"type": "transcript.interim", "role": "user", "text": "what is"},
        {"type": "transcript.interim", "role": "user", "text": "what is the"},
        {"type": "transcript", "role": "user", "text": "what is the time", "final": False},
        {"type": "voice", "activity": "end"},
    ]


def test_in_progress_after_turn_complete_says_more_may_follow(adapter):
    feed(adapter, {"serverContent": {"turnComplete": True, "interactionStatus": "IN_PROGRESS"}})
    assert finish(adapter)["status"] == "IN_PROGRESS"
    feed(adapter, {"serverContent": {"turnComplete": True}})
    assert "status" not in finish(adapter, turn=2)


# --- start: voices, language, camera quality ---------------------------------------------------


def start(**options) -> dict:
    return bp.read_start({"type": "start", **options})


def test_all_thirty_prebuilt_voices_are_offered_and_accepted():
    assert len(personas.VOICES) == 30
    assert {"Puck", "Kore", "Zephyr", "Sulafat", "Zubenelgenubi"} <= set(personas.VOICES)
    for voice in personas.VOICES:
        assert start(voice=voice)["voice"] == voice
    assert start(voice="aoede")["voice"] == "Aoede"  # Google matches names case-insensitively
    assert start()["voice"] == ""  # the deployment's voice


def test_the_offered_voices_are_the_ones_the_capability_table_accepts(settings):
    from assistant.live.gemini.models import capabilities

    voices = getattr(capabilities(settings.PASTRA_MODEL), "voices", None)
    if not voices:
        pytest.skip("the capability table does not list voices for this model")
    assert {v.lower() for v in personas.VOICES} == set(voices)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("voice", "Nobody", "prebuilt voices"),
        ("language", "xx-YY", "BCP-47"),
        ("language", "en_US", "BCP-47"),
        ("media_resolution", "ultra", "`low`, `medium` or `high`"),
        ("mediaResolution", "8k", "`mediaResolution` is `low`"),
    ],
)
def test_an_unknown_choice_is_refused_with_a_clear_reason(option, value, says):
    with pytest.raises(SessionEnd) as refused:
        start(**{option: value})
    assert refused.value.kind is EndKind.BAD_MESSAGE
    assert says in refused.value.message


def test_languages_and_camera_quality_are_read():
    assert start(language="de-DE")["language"] == "de-DE"
    assert start(language="ja-jp")["language"] == "ja-JP"
    assert start(language="automatic")["language"] == ""
    assert start()["language"] == start()["media_resolution"] == ""
    assert start(media_resolution="low")["media_resolution"] == "MEDIA_RESOLUTION_LOW"
    assert start(mediaResolution="HIGH")["media_resolution"] == "MEDIA_RESOLUTION_HIGH"
    assert start(media_resolution="MEDIA_RESOLUTION_MEDIUM")["media_resolution"] == (
        "MEDIA_RESOLUTION_MEDIUM"
    )
    codes = [code for code, _ in personas.LANGUAGES]
    assert codes[0] == ""
    assert {"en-US", "de-DE", "fr-FR", "es-US", "hi-IN", "pt-BR"} <= set(codes)


def test_web_setup_puts_language_and_resolution_where_gemini_reads_them():
    setup = web_setup(
        model="gemini-3.8-live",
        voice="Sulafat",
        text_only=False,
        persona="",
        functions=[],
        language="fr-FR",
        media_resolution="MEDIA_RESOLUTION_LOW",
    )
    generation = setup.body["generationConfig"]
    assert generation["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Sulafat"}},
        "languageCode": "fr-FR",
    }
    assert generation["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    plain = web_setup(
        model="gemini-3.8-live", voice="Puck", text_only=False, persona="", functions=[]
    )
    assert "languageCode" not in plain.body["generationConfig"]["speechConfig"]
    assert "mediaResolution" not in plain.body["generationConfig"]


@pytest.mark.django_db
def test_the_talk_page_offers_every_voice_language_and_camera_quality(client, alice):
    client.force_login(alice)
    response = client.get("/")
    config = response.context["config"]
    assert config["voices"] == personas.VOICES
    assert config["voiceStyles"]["Kore"] == "Firm"
    assert ["", "Automatic (the language you speak)"] in [list(c) for c in config["languages"]]
    assert [value for value, _ in config["mediaResolutions"]] == ["", "low", "medium", "high"]
    html = response.content.decode()
    for name in ("voice", "language", "resolution"):
        assert f'name="{name}"' in html
    assert "fewer" in html  # the camera quality's cost is explained beside it
