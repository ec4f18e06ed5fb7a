"""Gemini wire helpers: JSON (orjson), camelCase normalising, base64, and the few client
messages Pastra builds itself (audio, video, text, audioStreamEnd).

The real server reads client JSON with the proto3 JSON mapper (camelCase and snake_case at
every level except free-form Struct payloads). Pastra normalises what clients send to
camelCase once, at the edge, and always sends camelCase upstream.
"""

from __future__ import annotations

import binascii
import re
from typing import Any

import orjson

from assistant.live.gemini.errors import invalid
from assistant.live.limits import MAX_JSON_DEPTH, too_deep

loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


# --- camelCase ------------------------------------------------------------------------------

# Free-form payloads: their keys are data (argument names, schema properties), not fields.
STRUCT_FIELDS = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseJsonSchema",
        "responseSchema",
        "labels",
        "safetySettings",
    }
)
_CAMEL: dict[str, str] = {}


def camel(name: str) -> str:
    cached = _CAMEL.get(name)
    if cached is None:
        if "_" in name:
            head, *rest = name.split("_")
            cached = head + "".join(word[:1].upper() + word[1:] for word in rest)
        else:
            cached = name
        if len(_CAMEL) < 4096:  # bounded: keys come from clients
            _CAMEL[name] = cached
    return cached


def normalize(value: Any, depth: int = 1) -> Any:
    """camelCase every key at every level, except inside Struct payloads. Both spellings of
    one field in one object, or nesting deeper than MAX_JSON_DEPTH (Struct payloads
    included), is an invalid argument (as upstream would say)."""
    if isinstance(value, dict):
        if depth > MAX_JSON_DEPTH:
            raise invalid()
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise invalid()
            name = camel(key)
            if name in out:
                raise invalid()
            if name in STRUCT_FIELDS:
                if too_deep(item, depth=depth + 1):
                    raise invalid()
                out[name] = item
            else:
                out[name] = normalize(item, depth + 1)
        return out
    if isinstance(value, list):
        if depth > MAX_JSON_DEPTH:
            raise invalid()
        return [normalize(item, depth + 1) for item in value]
    return value


# --- base64 ---------------------------------------------------------------------------------

_URLSAFE = str.maketrans("-_", "+/")


def b64decode(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not. Raises ValueError."""
    if "-" in data or "_" in data:
        data = data.translate(_URLSAFE)
    if missing := -len(data) % 4:
        data += "=" * missing
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc


def b64encode(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False)


def b64_size(data: str) -> int:
    """Decoded size of a base64 string, without decoding it."""
    size = len(data)
    if size and data[-1] == "=":
        size -= 2 if size > 1 and data[-2] == "=" else 1
    return size * 3 // 4


# --- messages Pastra builds -----------------------------------------------------------------

AUDIO_MIME = "audio/pcm;rate=16000"
AUDIO_STREAM_END = b'{"realtimeInput":{"audioStreamEnd":true}}'
SETUP_COMPLETE = b'{"setupComplete":{}}'
_RATE = re.compile(r"rate=(\d+)")


def audio_message(b64: bytes | str, mime: str = AUDIO_MIME) -> bytes:
    if isinstance(b64, str):
        b64 = b64.encode()
    head = b'{"realtimeInput":{"audio":{"mimeType":"' + mime.encode() + b'","data":"'
    return head + b64 + b'"}}}'


def video_message(b64: str, mime: str) -> bytes:
    return dumps({"realtimeInput": {"video": {"mimeType": mime, "data": b64}}})


def text_message(text: str) -> bytes:
    return dumps({"realtimeInput": {"text": text}})


def audio_ms(size: int, mime: str) -> float:
    """Milliseconds of PCM16 mono in `size` bytes at the MIME's rate (16 kHz by default)."""
    rate = 16000
    if mime != AUDIO_MIME and (match := _RATE.search(mime)):
        rate = max(8000, min(48000, int(match.group(1))))
    return size * 500.0 / rate
