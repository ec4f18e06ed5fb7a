"""The web UI's protocol on /ws/live/ (docs/browser-protocol.md): message types and their
validation, and the events the server sends. Sizes live in limits.py, close codes in
close_codes.py (static/js/protocol.js mirrors all three; tests/js/logic.test.mjs compares)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from assistant.live.errors import EndKind, SessionEnd
from assistant.live.limits import (
    MAX_CONTROL_BYTES,
    MAX_FUNCTIONS,
    MAX_HEARD_CHARS,
    MAX_JSON_DEPTH,
    MAX_PERSONA_CHARS,
    MAX_START_BYTES,
    MAX_TEXT_CHARS,
    MAX_TEXT_FRAME,
    MAX_TOOL_ARGS_CHARS,
    too_deep,
)
from assistant.personas import LANGUAGE_CODES, MEDIA_RESOLUTION_VALUES, VOICES

START_TIMEOUT_SECONDS = 10.0

# --- browser → server -----------------------------------------------------------------------

CLIENT_TYPES = frozenset(
    {
        "start",
        "text",
        "mic.stopped",
        "video",
        "tool.result",
        "ping",
        "stop",
        # Protocol 2 (issue 14): the person stopped the reply; push-to-talk brackets.
        "interrupt",
        "activity.start",
        "activity.end",
    }
)
MODALITIES = ("audio", "text")
ACTIVITY_MODES = ("auto", "manual")  # `start.activity`: the model's or the page's VAD
MAX_PLAYED_MS = 3_600_000  # an hour of played audio: more is not a real value
_VOICES = {name.lower(): name for name in VOICES}  # Google matches names case-insensitively
_LANGUAGES = {code.lower(): code for code in LANGUAGE_CODES}
_AUTOMATIC = ("", "auto", "automatic")


def bad(message: str) -> SessionEnd:
    return SessionEnd(EndKind.BAD_MESSAGE, message)


def parse_message(text: str) -> dict[str, Any]:
    """A browser JSON message with a known `type`. Raises SessionEnd (bad or too large)."""
    if len(text) > MAX_TEXT_FRAME:
        raise SessionEnd(EndKind.TOO_LARGE, f"Message too large ({len(text)} bytes).")
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise bad("Malformed message: not JSON.") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise bad("Malformed message: expected an object with a string `type`.")
    if too_deep(message):
        raise bad(f"Malformed message: nested more than {MAX_JSON_DEPTH} levels.")
    kind = message["type"]
    if kind not in CLIENT_TYPES:
        raise bad(f"Unknown message type {kind[:40]!r}.")
    limit = {"video": MAX_TEXT_FRAME, "start": MAX_START_BYTES}.get(kind, MAX_CONTROL_BYTES)
    if len(text) > limit:
        raise SessionEnd(EndKind.TOO_LARGE, f"`{kind}` message too large ({len(text)} bytes).")
    return message


def _string(message: dict, name: str, *, limit: int, required: bool = False) -> str:
    value = message.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise bad(f"Malformed `{message['type']}`: `{name}` must be a string of at most {limit}.")
    return value


def read_start(message: dict[str, Any]) -> dict[str, Any]:
    """Validated options of a `start` message (unknown options are ignored)."""
    modality = _string(message, "modality", limit=10) or "audio"
    if modality not in MODALITIES:
        raise bad("Malformed `start`: `modality` is `audio` or `text`.")
    conversation = _string(message, "conversation", limit=64)
    if conversation:
        try:
            conversation = str(uuid.UUID(conversation))
        except ValueError:
            raise bad("Malformed `start`: `conversation` is not a conversation id.") from None
    functions = message.get("functions") or []
    if not isinstance(functions, list) or len(functions) > MAX_FUNCTIONS:
        raise bad(f"Malformed `start`: `functions` is a list of at most {MAX_FUNCTIONS}.")
    for declaration in functions:
        if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str):
            raise bad("Malformed `start`: every function needs a `name`.")
    return {
        "model": _string(message, "model", limit=120),
        "voice": _voice(message),
        "modality": modality,
        "persona": _string(message, "persona", limit=MAX_PERSONA_CHARS),
        "language": _language(message),
        "media_resolution": _media_resolution(message),
        "conversation": conversation,
        "functions": functions,
        "manual_activity": _activity(message),
    }


def _activity(message: dict) -> bool:
    """`activity: "manual"`: push-to-talk, the page brackets speech (automatic activity
    detection off); "auto" or absent: the model detects speech."""
    mode = _string(message, "activity", limit=10) or "auto"
    if mode not in ACTIVITY_MODES:
        raise bad("Malformed `start`: `activity` is `auto` or `manual`.")
    return mode == "manual"


def _voice(message: dict) -> str:
    """A prebuilt voice's name as Google spells it, or "" (the deployment's voice)."""
    voice = _string(message, "voice", limit=60).strip()
    if voice and voice.lower() not in _VOICES:
        raise bad(
            f"Malformed `start`: `voice` {voice[:30]!r} is not one of the {len(VOICES)} "
            f"prebuilt voices ({', '.join(VOICES[:4])}, …)."
        )
    return _VOICES.get(voice.lower(), "")


def _language(message: dict) -> str:
    """A BCP-47 code the Live API documents, or "" (automatic: the field is left out)."""
    language = _string(message, "language", limit=20).strip()
    if language.lower() in _AUTOMATIC:
        return ""
    if language.lower() not in _LANGUAGES:
        raise bad(
            f"Malformed `start`: `language` {language!r} is not a language the Live API "
            "supports (a BCP-47 code such as en-US, de-DE or ja-JP, or `automatic`)."
        )
    return _LANGUAGES[language.lower()]


def _media_resolution(message: dict) -> str:
    """generationConfig.mediaResolution for `media_resolution` (or `mediaResolution`):
    low, medium or high (or Gemini's MEDIA_RESOLUTION_* names); "" leaves it unset."""
    name = "media_resolution" if "media_resolution" in message else "mediaResolution"
    value = _string(message, name, limit=40).strip().lower().removeprefix("media_resolution_")
    if value in ("", "unspecified", "default"):
        return ""
    if value not in MEDIA_RESOLUTION_VALUES:
        raise bad(f"Malformed `start`: `{name}` is `low`, `medium` or `high`.")
    return MEDIA_RESOLUTION_VALUES[value]


def read_text(message: dict[str, Any]) -> tuple[str, str]:
    """(text, id) of a `text`: `id` (optional, the page's) is acknowledged with `received`."""
    text = _string(message, "text", limit=MAX_TEXT_CHARS, required=True)
    return text, _string(message, "id", limit=64)


INTERRUPTED_BY = ("button", "text", "voice")


def read_interrupt(message: dict[str, Any]) -> tuple[int, str, str]:
    """(played_ms, heard, by) of an `interrupt`: how much of the reply the person heard (ms
    of audio played, its words up to there as far as the page can tell) and what stopped it:
    the button, a typed message (sent next), or their voice."""
    played = message.get("played_ms", 0)
    if isinstance(played, bool) or not isinstance(played, int | float) or played < 0:
        raise bad("Malformed `interrupt`: `played_ms` must be a number of at least 0.")
    heard = _string(message, "heard", limit=MAX_HEARD_CHARS)
    by = _string(message, "by", limit=10) or "button"
    if by not in INTERRUPTED_BY:
        raise bad("Malformed `interrupt`: `by` is `button`, `text` or `voice`.")
    return int(min(played, MAX_PLAYED_MS)), heard, by


def read_video(message: dict[str, Any]) -> tuple[str, str]:
    """(mime, base64 data) of a `video` message."""
    mime = _string(message, "mime", limit=40) or "image/jpeg"
    if not mime.startswith("image/"):
        raise bad("Malformed `video`: `mime` must be an image type.")
    data = _string(message, "data", limit=MAX_TEXT_FRAME, required=True)
    return mime, data


SCHEDULING = ("SILENT", "WHEN_IDLE", "INTERRUPT")  # NON_BLOCKING results (Live tools page)


def read_tool_result(message: dict[str, Any]) -> dict[str, Any]:
    """A page's answer to its own function: `response`, and for a NON_BLOCKING call optional
    `scheduling` (SILENT / WHEN_IDLE / INTERRUPT) and `willContinue` (more answers follow)."""
    call_id = _string(message, "id", limit=200, required=True)
    response = message.get("response")
    if not isinstance(response, dict):
        raise bad("Malformed `tool.result`: `response` must be an object.")
    result = {"id": call_id, "name": _string(message, "name", limit=200), "response": response}
    scheduling = message.get("scheduling")
    if scheduling is not None:
        if scheduling not in SCHEDULING:
            raise bad(f"Malformed `tool.result`: `scheduling` is one of {', '.join(SCHEDULING)}.")
        result["scheduling"] = scheduling
    will_continue = message.get("willContinue")
    if will_continue is not None:
        if not isinstance(will_continue, bool):
            raise bad("Malformed `tool.result`: `willContinue` is true or false.")
        result["willContinue"] = will_continue
    return result


# --- server → browser ---------------------------------------------------------------------


def event(kind: str, **fields: Any) -> str:
    return orjson.dumps({"type": kind, **fields}).decode()


def error_event(code: int, message: str) -> str:
    return event("error", code=int(code), message=message)


def short_args(args: Any) -> Any:
    """A tool call's arguments for a `tool` event: as they are when their JSON is at most
    MAX_TOOL_ARGS_CHARS, else that JSON cut to the limit (a string ending in "…")."""
    try:
        text = orjson.dumps(args, default=str).decode()
    except TypeError:  # e.g. integers beyond 64 bits
        text = str(args)
    if len(text) <= MAX_TOOL_ARGS_CHARS:
        return args
    return text[: MAX_TOOL_ARGS_CHARS - 1] + "…"
