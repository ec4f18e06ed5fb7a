"""What the fuzz suite sends: the real message shapes of both client protocols (a valid
instance of every message the bridge reads), and hypothesis strategies that break them:
wrong types at every field, malformed JSON, deep nesting, huge values, bad base64, odd audio,
wrong frame types, unknown tool ids. A frame is a `Frame`: ("text", str) or ("bytes", bytes)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from hypothesis import strategies as st

from assistant.live.limits import (
    MAX_AUDIO_BYTES,
    MAX_CONTENT_BYTES,
    MAX_CONTROL_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_START_BYTES,
    MAX_TEXT_CHARS,
    MAX_TEXT_FRAME,
    MAX_VIDEO_BYTES,
)
from tests.live.conftest import MODEL

DAPHNE_LIMIT = 1024 * 1024  # the Dockerfile's --websocket-max-message-size
PCM = bytes(3200)  # 100 ms of 16 kHz PCM16 silence
PCM_B64 = base64.b64encode(PCM).decode()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64) + b"\xff\xd9"
JPEG_B64 = base64.b64encode(JPEG).decode()
DEEP = "__fuzz_deep__"  # stands for a nested value spliced into the JSON text

# --- the Gemini-compatible protocol (docs/gemini-live-protocol.md) ---------------------------

FUNCTION = {
    "name": "lookup",
    "description": "Look something up.",
    "parameters": {
        "type": "OBJECT",
        "properties": {"q": {"type": "STRING", "description": "what"}},
        "required": ["q"],
    },
}


def gemini_setup(model: str = MODEL) -> dict:
    return {
        "setup": {
            "model": f"models/{model}",
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "temperature": 0.7,
                "speechConfig": {
                    "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
                    "languageCode": "en-US",
                },
            },
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "tools": [{"functionDeclarations": [FUNCTION]}],
            "realtimeInputConfig": {
                "automaticActivityDetection": {"disabled": False, "silenceDurationMs": 500}
            },
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
            "sessionResumption": {},
            "contextWindowCompression": {"slidingWindow": {}},
        }
    }


GEMINI_MESSAGES: dict[str, dict] = {
    "setup": gemini_setup(),
    "clientContent": {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "hello there"}]}],
            "turnComplete": True,
        }
    },
    "clientContent.history": {
        "clientContent": {
            "turns": [
                {"role": "user", "parts": [{"text": "earlier"}]},
                {"role": "model", "parts": [{"text": "noted"}]},
            ],
            "turnComplete": False,
        }
    },
    "realtimeInput.audio": {
        "realtimeInput": {"audio": {"data": PCM_B64, "mimeType": "audio/pcm;rate=16000"}}
    },
    "realtimeInput.video": {
        "realtimeInput": {"video": {"data": JPEG_B64, "mimeType": "image/jpeg"}}
    },
    "realtimeInput.mediaChunks": {
        "realtimeInput": {
            "mediaChunks": [
                {"data": PCM_B64, "mimeType": "audio/pcm"},
                {"data": JPEG_B64, "mimeType": "image/jpeg"},
            ]
        }
    },
    "realtimeInput.text": {"realtimeInput": {"text": "hello"}},
    "realtimeInput.activityStart": {"realtimeInput": {"activityStart": {}}},
    "realtimeInput.activityEnd": {"realtimeInput": {"activityEnd": {}}},
    "realtimeInput.audioStreamEnd": {"realtimeInput": {"audioStreamEnd": True}},
    "toolResponse": {
        "toolResponse": {
            "functionResponses": [{"id": "call-1", "name": "lookup", "response": {"result": 1}}]
        }
    },
    "contextUpdate": {
        "contextUpdate": {
            "systemInstruction": {"parts": [{"text": "Be briefer."}]},
            "tools": {"tools": [{"functionDeclarations": [FUNCTION]}]},
        }
    },
}

# --- the web UI's protocol (docs/browser-protocol.md) -----------------------------------------

WEB_START = {
    "type": "start",
    "modality": "text",
    "voice": "Puck",
    "language": "en-US",
    "media_resolution": "low",
    "persona": "Be brief.",
    "model": MODEL,
    "functions": [FUNCTION],
}
WEB_MESSAGES: dict[str, dict] = {
    "start": WEB_START,
    "text": {"type": "text", "text": "hello"},
    "video": {"type": "video", "source": "camera", "mime": "image/jpeg", "data": JPEG_B64},
    "tool.result": {
        "type": "tool.result",
        "id": "call-1",
        "name": "lookup",
        "response": {"result": 1},
        "scheduling": "WHEN_IDLE",
        "willContinue": False,
    },
    "mic.stopped": {"type": "mic.stopped"},
    "ping": {"type": "ping"},
    "stop": {"type": "stop"},
}

# --- breaking them ------------------------------------------------------------------------------


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(value)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def at(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def dumps(value: Any, *, deep: str = "") -> str:
    """JSON text (big integers allowed); DEEP stands for `deep`, spliced in as text."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace(json.dumps(DEEP), deep) if deep else text


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", " ", "\x00", "🙂", "models/", "AUDIO", "-1", "NaN"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
DEPTHS = st.sampled_from([64, 255, 300, 600, 1100, 5000])


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


@st.composite
def wrong_type(draw, message: dict) -> str:
    """`message` with the value at one path replaced by a value of another JSON type."""
    path = draw(st.sampled_from(paths(message)))
    old = at(message, path)
    new = draw(JSON_VALUES.filter(lambda v: _kind(v) != _kind(old)))
    return dumps(replaced(message, path, new))


@st.composite
def deep_at(draw, message: dict) -> str:
    """`message` with a value nested `depth` levels deep at one path (or as the whole)."""
    path = draw(st.sampled_from(paths(message)))
    depth = draw(DEPTHS)
    return dumps(
        replaced(message, path, DEEP), deep=nested(depth, draw(st.sampled_from(["list", "dict"])))
    )


@st.composite
def extra_or_missing(draw, message: dict) -> str:
    """`message` with one field dropped, or an unknown one added, somewhere."""
    objects = [p for p in paths(message) if isinstance(at(message, p), dict)]
    path = draw(st.sampled_from(objects))
    target = at(message, path)
    if target and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(target)))
        new = {k: v for k, v in target.items() if k != key}
    else:
        new = {**target, draw(st.text(min_size=1, max_size=12)): draw(JSON_VALUES)}
    return dumps(replaced(message, path, new))


SIZES = st.sampled_from(
    [
        MAX_CONTROL_BYTES + 1,
        MAX_START_BYTES + 1,
        MAX_CONTENT_BYTES + 1,
        MAX_MESSAGE_BYTES + 1,
        MAX_TEXT_FRAME + 1,
        DAPHNE_LIMIT - 64,
        DAPHNE_LIMIT + 1,
        2 * DAPHNE_LIMIT,
    ]
)


@st.composite
def huge_at(draw, message: dict) -> str:
    """`message` with one string (or the whole) grown to a size around a limit, or one list
    grown to many elements."""
    strings = [p for p in paths(message) if isinstance(at(message, p), str)]
    lists = [p for p in paths(message) if isinstance(at(message, p), list)]
    size = draw(SIZES)
    if lists and draw(st.integers(0, 3)) == 0:
        path = draw(st.sampled_from(lists))
        items = at(message, path)
        count = min(size // max(1, len(dumps(items[0])) if items else 2), 200_000)
        return dumps(replaced(message, path, (items[:1] or [0]) * count))
    if not strings:
        return dumps(message) + " " * size
    path = draw(st.sampled_from(strings))
    fill = draw(st.sampled_from(["a", "A/+=", "é", "\x00"]))
    return dumps(replaced(message, path, fill * (size // len(fill.encode()))))


MALFORMED = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "{",
            "}",
            "[",
            "null",
            "true",
            "0",
            "[]",
            '"setup"',
            "{}",
            "NaN",
            "Infinity",
            "{'setup': {}}",
            '{"setup": {}, "realtimeInput": {}}',
            "\ufeff{}",
            '{"type": "ping"} {"type": "ping"}',
            '{"type": "ping",}',
            '{"type": ping}',
            '{"type": "\\ud800"}',
            '{"realtimeInput": {"text": "\\u0000"}}',
            "\x00",
        ]
    ),
    st.text(max_size=40),
)


@st.composite
def truncated(draw, message: dict) -> str:
    text = dumps(message)
    return text[: draw(st.integers(0, len(text) - 1))]


def b64_variants(raw: bytes) -> st.SearchStrategy[str]:
    """Good, odd and bad base64 for `raw`: both alphabets, padding, junk."""
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return st.sampled_from(
        [
            std, url, std.rstrip("="), url.rstrip("="), std + "=", std + "===", "=" + std,
            std[:-1], std[: len(std) // 2 + 1], std.replace("A", "-", 3) + "+/_",
            "!!!!", "😀😀", std[:8] + "\n" + std[8:], " " + std, "", "====", "A", "AB=C",
        ]
    )  # fmt: skip


ODD_PCM = st.one_of(
    st.just(b""),
    st.just(b"\x00"),
    st.binary(min_size=1, max_size=64).filter(lambda b: len(b) % 2 == 1),
    st.sampled_from([bytes(3201), bytes(MAX_AUDIO_BYTES - 1), bytes(MAX_AUDIO_BYTES + 2)]),
)
AUDIO_MIMES = st.sampled_from(
    [
        "audio/pcm;rate=16000", "audio/pcm;rate=24000", "audio/pcm;rate=8000",
        "audio/pcm;rate=44100", "audio/pcm;rate=0", "audio/pcm;rate=-16000", "audio/pcm;rate=",
        "audio/pcm;rate=abc", "audio/pcm;rate=16000;channels=2", "audio/wav", "audio/opus",
        "audio/L16", "AUDIO/PCM", "image/jpeg", "text/plain", "", "audio/pcm;" + "x" * 300,
    ]
)  # fmt: skip


@st.composite
def gemini_media(draw) -> str:
    """Audio/video/mediaChunks with odd data, base64 and MIME types."""
    raw = draw(st.one_of(ODD_PCM, st.just(PCM), st.just(JPEG), st.binary(max_size=256)))
    data = draw(b64_variants(raw))
    mime = draw(AUDIO_MIMES)
    shape = draw(st.sampled_from(["audio", "video", "mediaChunks"]))
    blob = {"data": data, "mimeType": mime}
    if draw(st.booleans()):
        blob = {"data": data, "mime_type": mime}  # snake_case, as the Python SDK may send
    body = (
        {"mediaChunks": [blob] * draw(st.integers(1, 3))}
        if shape == "mediaChunks"
        else {shape: blob}
    )
    return dumps({"realtimeInput": body})


@st.composite
def unknown_tool_response(draw) -> str:
    ids = draw(st.lists(st.one_of(st.text(max_size=20), JSON_VALUES), min_size=0, max_size=3))
    return dumps(
        {
            "toolResponse": {
                "functionResponses": [
                    {"id": i, "name": draw(st.sampled_from(["lookup", "get_weather", "nope", ""])),
                     "response": draw(JSON_VALUES)}
                    for i in ids
                ]
            }
        }
    )  # fmt: skip


class Frame(tuple):
    """(kind, payload): kind "text" (payload str) or "bytes"; printed short in reports."""

    __slots__ = ()

    def __new__(cls, kind: str, payload: str | bytes):
        return super().__new__(cls, (kind, payload))

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def payload(self) -> str | bytes:
        return self[1]

    def __repr__(self) -> str:
        payload = self.payload
        shown = repr(payload[:160]) + (f"…({len(payload)} long)" if len(payload) > 160 else "")
        return f"{self.kind}:{shown}"

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints examples
        printer.text(repr(self))


def _text(strategy):
    return strategy.map(lambda text: Frame("text", text))


def _binary(strategy):
    return strategy.map(
        lambda text: Frame(
            "bytes", text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        )
    )


def broken(messages: dict[str, dict]) -> st.SearchStrategy[str]:
    """A JSON text frame derived from one of `messages`."""
    template = st.sampled_from(sorted(messages)).map(lambda name: messages[name])
    return st.one_of(
        template.flatmap(wrong_type),
        template.flatmap(wrong_type),  # the most common way in: weighted twice
        template.flatmap(deep_at),
        template.flatmap(extra_or_missing),
        template.flatmap(huge_at),
        template.flatmap(truncated),
        template.map(dumps),  # valid, in an odd order or place (before setup, twice)
        MALFORMED,
    )


def gemini_frames() -> st.SearchStrategy[Frame]:
    text = st.one_of(broken(GEMINI_MESSAGES), gemini_media(), unknown_tool_response())
    return st.one_of(
        _text(text),
        _text(text),
        _binary(text),  # Gemini clients may send JSON in binary frames
        _binary(st.one_of(ODD_PCM, st.binary(max_size=64))),  # raw audio where JSON belongs
    )


@st.composite
def web_video(draw) -> str:
    raw = draw(st.one_of(st.just(JPEG), st.binary(max_size=128)))
    return dumps(
        {
            "type": "video",
            "source": draw(st.sampled_from(["camera", "screen", "", "other"])),
            "mime": draw(st.sampled_from(["image/jpeg", "image/png", "image/", "video/mp4", ""])),
            "data": draw(b64_variants(raw)),
        }
    )


@st.composite
def web_unknown_tool_result(draw) -> str:
    return dumps(
        {
            "type": "tool.result",
            "id": draw(st.text(min_size=1, max_size=30)),
            "name": draw(st.sampled_from(["lookup", "get_weather", "nope"])),
            "response": draw(st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3)),
        }
    )


def web_frames() -> st.SearchStrategy[Frame]:
    text = st.one_of(broken(WEB_MESSAGES), web_video(), web_unknown_tool_result())
    too_long_text = st.just(dumps({"type": "text", "text": "a" * (MAX_TEXT_CHARS + 1)}))
    big_video = st.just(
        dumps({"type": "video", "mime": "image/jpeg", "data": "A" * (MAX_VIDEO_BYTES * 4 // 3 + 8)})
    )
    return st.one_of(
        _text(text),
        _text(text),
        _text(st.one_of(too_long_text, big_video)),
        _binary(ODD_PCM),  # odd audio: odd byte counts, empty, over the 32 KiB limit
        _binary(text),  # JSON where PCM belongs
        _text(_b64_pcm()),  # PCM (as base64 text) where JSON belongs
        _binary(st.sampled_from([bytes(DAPHNE_LIMIT + 1), bytes(2 * DAPHNE_LIMIT)])),
    )


def _b64_pcm():
    return st.just(PCM_B64)


def any_frames() -> st.SearchStrategy[Frame]:
    """For the admin live view (it reads nothing): anything either client might send."""
    return st.one_of(web_frames(), gemini_frames())
