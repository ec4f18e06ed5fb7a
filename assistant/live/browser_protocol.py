"""The web UI's protocol on /ws/live/ (docs/browser-protocol.md): message types and their
validation, size limits, close codes with human-readable reasons, event builders."""

from __future__ import annotations

import uuid
from enum import IntEnum
from typing import Any

import orjson

from assistant.live.errors import EndKind, SessionEnd

# --- limits ---------------------------------------------------------------------------------

MAX_AUDIO_BYTES = 32 * 1024  # one binary frame of PCM16 (1 s at 16 kHz is 32 000 bytes)
MAX_VIDEO_BYTES = 512 * 1024  # one JPEG frame, decoded
MAX_CONTROL_BYTES = 16 * 1024  # any JSON message but `video` and `start`
MAX_START_BYTES = 64 * 1024  # `start` may carry a persona and client function declarations
MAX_TEXT_FRAME = MAX_VIDEO_BYTES * 4 // 3 + 1024  # a video message, base64 + JSON envelope
MAX_TEXT_CHARS = 8000
MAX_PERSONA_CHARS = 4000
MAX_FUNCTIONS = 32
MAX_TOOL_ARGS_CHARS = 500  # a `tool` event's `args`: longer JSON is sent cut, as a string
START_TIMEOUT_SECONDS = 10.0


class CloseCode(IntEnum):
    """Close codes the web UI may see (mirrored in static/js; reasons are human-readable)."""

    NORMAL = 1000
    SERVICE_RESTART = 4001  # the server is restarting: reconnect (resumes the conversation)
    BAD_MESSAGE = 4400  # malformed JSON, unknown type, invalid field
    UNAUTHENTICATED = 4401  # before accept: not logged in
    NOT_FOUND = 4404  # `start.conversation` is not one of yours
    START_TIMEOUT = 4408
    TOO_LARGE = 4413  # a frame over its kind's size limit
    SUPERSEDED = 4409  # the conversation was resumed by another socket
    ENDED = 4410  # staff, `manage.py end_session`, logout
    MODEL_NOT_ALLOWED = 4422
    TOO_MANY_SESSIONS = 4429
    DAILY_LIMIT = 4430
    RATE_LIMITED = 4431
    IDLE = 4432
    SLOW_CLIENT = 4433
    INTERNAL = 4500
    UPSTREAM_UNAVAILABLE = 4502
    UPSTREAM_REJECTED = 4503


_WEB_CODES = {
    EndKind.NORMAL: CloseCode.NORMAL,
    EndKind.CLIENT_GONE: CloseCode.NORMAL,
    EndKind.UPSTREAM_ENDED: CloseCode.NORMAL,
    EndKind.ENDED: CloseCode.ENDED,
    EndKind.SUPERSEDED: CloseCode.SUPERSEDED,
    EndKind.SHUTDOWN: CloseCode.SERVICE_RESTART,
    EndKind.BAD_MESSAGE: CloseCode.BAD_MESSAGE,
    EndKind.TOO_LARGE: CloseCode.TOO_LARGE,
    EndKind.RATE_LIMITED: CloseCode.RATE_LIMITED,
    EndKind.START_TIMEOUT: CloseCode.START_TIMEOUT,
    EndKind.MODEL_NOT_ALLOWED: CloseCode.MODEL_NOT_ALLOWED,
    EndKind.NOT_FOUND: CloseCode.NOT_FOUND,
    EndKind.TOO_MANY_SESSIONS: CloseCode.TOO_MANY_SESSIONS,
    EndKind.DAILY_LIMIT: CloseCode.DAILY_LIMIT,
    EndKind.IDLE: CloseCode.IDLE,
    EndKind.SLOW_CLIENT: CloseCode.SLOW_CLIENT,
    EndKind.UPSTREAM_UNAVAILABLE: CloseCode.UPSTREAM_UNAVAILABLE,
    EndKind.UPSTREAM_REJECTED: CloseCode.UPSTREAM_REJECTED,
    EndKind.INTERNAL: CloseCode.INTERNAL,
}


def web_close_code(end: SessionEnd) -> CloseCode:
    return _WEB_CODES.get(end.kind, CloseCode.INTERNAL)


# --- browser → server -----------------------------------------------------------------------

CLIENT_TYPES = frozenset({"start", "text", "mic.stopped", "video", "tool.result", "ping", "stop"})
MODALITIES = ("audio", "text")


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
        "voice": _string(message, "voice", limit=60),
        "modality": modality,
        "persona": _string(message, "persona", limit=MAX_PERSONA_CHARS),
        "language": _string(message, "language", limit=20),
        "conversation": conversation,
        "functions": functions,
    }


def read_text(message: dict[str, Any]) -> str:
    return _string(message, "text", limit=MAX_TEXT_CHARS, required=True)


def read_video(message: dict[str, Any]) -> tuple[str, str]:
    """(mime, base64 data) of a `video` message."""
    mime = _string(message, "mime", limit=40) or "image/jpeg"
    if not mime.startswith("image/"):
        raise bad("Malformed `video`: `mime` must be an image type.")
    data = _string(message, "data", limit=MAX_TEXT_FRAME, required=True)
    return mime, data


def read_tool_result(message: dict[str, Any]) -> dict[str, Any]:
    call_id = _string(message, "id", limit=200, required=True)
    response = message.get("response")
    if not isinstance(response, dict):
        raise bad("Malformed `tool.result`: `response` must be an object.")
    return {"id": call_id, "name": _string(message, "name", limit=200), "response": response}


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
