"""The emulator's pure pieces: schema normalising, base64, VAD timing, arithmetic, audio."""

import struct

import pytest

from gemini_emulator import protocol
from gemini_emulator.scripts import ToolSet, evaluate, is_arithmetic, parse_command, split_words
from gemini_emulator.speech import _parse_wav, resample, synthetic_speech
from gemini_emulator.vad import EnergyVAD
from tests.emulator.conftest import silence, tone


def test_normalize_renames_known_fields_and_keeps_struct_payloads():
    kind, body = protocol.normalize_message(
        {
            "tool_response": {
                "function_responses": [
                    {"id": "1", "will_continue": True, "response": {"snake_case": {"deep_key": 1}}}
                ]
            }
        }
    )
    assert kind == "toolResponse"
    assert body == {
        "functionResponses": [
            {"id": "1", "willContinue": True, "response": {"snake_case": {"deep_key": 1}}}
        ]
    }


def test_normalize_reports_unknown_names_with_the_snake_case_path():
    with pytest.raises(protocol.ProtocolError) as error:
        protocol.normalize_message(
            {"setup": {"tools": [{}, {"functionDeclarations": [{"name": "f", "strict": True}]}]}}
        )
    assert error.value.code == 1007
    assert error.value.reason == (
        'Invalid JSON payload received. Unknown name "strict" at '
        "'setup.tools[1].function_declarations[0]': Cannot find field."
    )


def test_normalize_refuses_both_spellings_of_one_field():
    with pytest.raises(protocol.ProtocolError):
        protocol.normalize_message({"clientContent": {"turnComplete": True, "turn_complete": True}})


@pytest.mark.parametrize(
    "encoded", ["+/8=", "-_8=", "-_8", "+/8"], ids=["std", "urlsafe", "urlsafe-nopad", "std-nopad"]
)
def test_b64decode_accepts_both_alphabets_with_or_without_padding(encoded):
    assert protocol.b64decode(encoded, "x") == b"\xfb\xff"


@pytest.mark.parametrize("data", ["", "QQ==", "QUI=", "QUJD"])
def test_b64len_matches_the_decoded_length(data):
    assert protocol.b64len(data) == len(protocol.b64decode(data, "x"))


def test_close_reason_is_cut_to_123_bytes_on_a_character_boundary():
    reason = protocol.close_reason("é" * 100)
    assert len(reason.encode()) <= 123
    assert reason == "é" * 61


@pytest.mark.parametrize(("seconds", "text"), [(50, "50s"), (0.4, "0.400s"), (1.5, "1.500s")])
def test_duration_text_is_protobuf_duration_json(seconds, text):
    assert protocol.duration_text(seconds) == text


def test_vad_reports_start_after_prefix_and_end_after_silence():
    vad = EnergyVAD(threshold=500, prefix_ms=60, silence_ms=200)
    events = vad.feed(silence(0.1) + tone(0.5), 16000)
    assert events == [("start", 0.1)]  # offsets: seconds since the stream began
    assert vad.feed(silence(0.18), 16000) == []
    assert vad.feed(silence(0.02), 16000) == [("end", 0.5, 0.6)]


def test_vad_joins_chunks_that_split_frames():
    vad = EnergyVAD(threshold=500, prefix_ms=20, silence_ms=100)
    pcm = tone(0.3) + silence(0.2)
    events = []
    for offset in range(0, len(pcm), 333 * 2):  # chunks that do not align to 20 ms frames
        events += vad.feed(pcm[offset : offset + 666], 16000)
    assert events == [("start", 0.0), ("end", 0.3, 0.3)]


def test_arithmetic_is_evaluated_without_eval():
    assert evaluate("2 ^ 10") == 1024
    assert evaluate("7 ÷ 2") == 3.5
    assert evaluate("-(3 - 5) * 4") == 8
    assert not is_arithmetic("__import__('os')")
    assert not is_arithmetic("True + 1")
    assert not is_arithmetic("'a' * 3")
    with pytest.raises(OverflowError):
        evaluate("9 ** 9 ** 9")


def test_weather_uses_the_first_parameter_when_none_is_required():
    tools = ToolSet()
    tools.functions["weatherNow"] = {"parametersJsonSchema": {"properties": {"city": {}}}}
    command = parse_command("is there weather in New York? asking", tools)
    assert (command.kind, command.name, command.args) == (
        "call",
        "weatherNow",
        {"city": "New York"},
    )


@pytest.mark.parametrize("pieces", [1, 2, 5, 40])
def test_split_words_deltas_concatenate_to_the_text(pieces):
    text = "You said: the quick  brown fox"
    deltas = split_words(text, pieces)
    assert len(deltas) == pieces
    assert "".join(deltas) == text


def test_resample_22050_to_24000_keeps_the_duration():
    pcm = struct.pack("<2205h", *range(2205))
    assert len(resample(pcm, 22050)) == 2400 * 2


def test_parse_wav_tolerates_streaming_sizes():
    header = b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16
    )
    rate, pcm = _parse_wav(header + b"data\xff\xff\xff\xff" + b"\x01\x00\x02\x00\x03")
    assert rate == 22050
    assert pcm == b"\x01\x00\x02\x00"


def test_synthetic_speech_length_follows_the_syllables():
    short, long = synthetic_speech("hi"), synthetic_speech("this sentence has many more syllables")
    assert 0.2 < len(short) / 48000 < 0.4
    assert len(long) > 4 * len(short)
