"""Client → upstream messages: parse one Gemini-path message, split realtimeInput into
ordered pieces (legacy mediaChunks included), and translate clientContent for the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.live.gemini.errors import REASON_BAD_JSON, invalid, reason_unknown_field
from assistant.live.gemini.models import capabilities
from assistant.live.gemini.wire import AUDIO_MIME, JSONDecodeError, b64_size, camel, loads

CLIENT_KINDS = frozenset(
    {"setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate"}
)
REALTIME_FIELDS = frozenset(
    {"audio", "video", "text", "audioStreamEnd", "activityStart", "activityEnd", "mediaChunks"}
)

# Media kinds.
AUDIO, VIDEO = "audio", "video"


def parse_client(data: str | bytes) -> tuple[str, dict[str, Any]]:
    """(kind, body) of a client message; body not yet normalised. Raises SessionEnd."""
    try:
        message = loads(data)
    except JSONDecodeError:
        raise invalid(REASON_BAD_JSON) from None
    if not isinstance(message, dict) or len(message) != 1:
        raise invalid()
    ((key, body),) = message.items()
    kind = camel(key)
    if kind not in CLIENT_KINDS:
        raise invalid(reason_unknown_field(key))
    if not isinstance(body, dict):
        raise invalid()
    return kind, body


@dataclass(frozen=True, slots=True)
class Media:
    kind: str  # AUDIO | VIDEO
    mime: str
    data: str  # base64 as the client sent it (passed through untouched)

    @property
    def size(self) -> int:
        return b64_size(self.data)


def _blob(value: Any) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise invalid()
    data, mime = value.get("data"), value.get("mimeType") or ""
    if not isinstance(data, str) or not isinstance(mime, str):
        raise invalid()
    return mime, data


def _audio_mime(mime: str) -> str:
    # The tutorial sends bare "audio/pcm"; Gemini assumes 16 kHz then, say so explicitly.
    if not mime or mime == "audio/pcm":
        return AUDIO_MIME
    return mime


def realtime_parts(body: dict[str, Any]) -> list[Media | tuple[str, Any]]:
    """Split one (normalised) realtimeInput into ordered pieces: Media for audio/video, and
    ("text", str) / ("audioStreamEnd", True) / ("activityStart", {}) / ("activityEnd", {}).
    Legacy `mediaChunks` become audio or video by MIME type."""
    pieces: list[Media | tuple[str, Any]] = []
    for name in body:
        if name not in REALTIME_FIELDS:
            raise invalid(reason_unknown_field(name, "realtime_input"))
    if body.get("activityStart") is not None:
        pieces.append(("activityStart", {}))
    chunks = body.get("mediaChunks") or ()
    if not isinstance(chunks, (list, tuple)):
        raise invalid()
    for chunk in chunks:
        mime, data = _blob(chunk)
        if mime.startswith(("image/", "video/")):
            pieces.append(Media(VIDEO, mime, data))
        else:
            pieces.append(Media(AUDIO, _audio_mime(mime), data))
    if (audio := body.get("audio")) is not None:
        mime, data = _blob(audio)
        pieces.append(Media(AUDIO, _audio_mime(mime), data))
    if (video := body.get("video")) is not None:
        mime, data = _blob(video)
        pieces.append(Media(VIDEO, mime or "image/jpeg", data))
    if (text := body.get("text")) is not None:
        if not isinstance(text, str):
            raise invalid()
        pieces.append(("text", text))
    if body.get("audioStreamEnd"):
        pieces.append(("audioStreamEnd", True))
    if body.get("activityEnd") is not None:
        pieces.append(("activityEnd", {}))
    return pieces


def content_text(content: Any) -> str:
    if not isinstance(content, dict) or not isinstance(parts := content.get("parts") or [], list):
        return ""
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def check_content(content: Any) -> None:
    """A `Content` (`role`, `parts`) as the proto has it, or SessionEnd (1007)."""
    if not isinstance(content, dict):
        raise invalid()
    role, parts = content.get("role"), content.get("parts")
    if role is not None and not isinstance(role, str):
        raise invalid()
    if parts is not None and (
        not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts)
    ):
        raise invalid()


def check_tools(tools: Any) -> None:
    """A `tools` list (each a dict; `functionDeclarations` a list of objects with a string
    `name`), or SessionEnd (1007)."""
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid()
    for tool in tools:
        if not isinstance(tool, dict):
            raise invalid()
        declarations = tool.get("functionDeclarations")
        if declarations is None:
            continue
        if not isinstance(declarations, list):
            raise invalid()
        for declaration in declarations:
            if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str):
                raise invalid()


def check_context_update(body: dict[str, Any]) -> None:
    """A (normalised) contextUpdate's shape: `systemInstruction` a Content (or a string),
    `tools` an object whose `tools` is a tools list. Raises SessionEnd (1007)."""
    instruction = body.get("systemInstruction")
    if instruction is not None and not isinstance(instruction, str):
        check_content(instruction)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, dict):
            raise invalid()
        check_tools(tools.get("tools"))


def _text_only(content: dict[str, Any]) -> bool:
    parts = content.get("parts") or []
    return bool(parts) and all(isinstance(p, dict) and set(p) == {"text"} for p in parts)


def translate_client_content(body: dict[str, Any], *, model: str) -> tuple[str, Any]:
    """What to do with a (normalised) clientContent, as ("drop", None) | ("audioStreamEnd",
    None) | ("text", str) | ("clientContent", body).

    - The tutorial's "continue signal" (one empty user turn, turnComplete false) is dropped.
    - Its "end of turn" (one empty user turn, turnComplete true) is `audioStreamEnd`.
    - Where the model table says so (3.x), a single text-only user turn with turnComplete
      true becomes `realtimeInput.text`.
    - Anything else (history, several turns, no turns) passes through.
    """
    turns = body.get("turns")
    if turns is not None and not isinstance(turns, list):
        raise invalid()
    turns = turns or []
    for turn in turns:
        check_content(turn)
    complete = bool(body.get("turnComplete"))
    if len(turns) == 1 and isinstance(turns[0], dict):
        turn = turns[0]
        role = turn.get("role") or "user"
        if role == "user" and not (turn.get("parts") or []):
            return ("audioStreamEnd", None) if complete else ("drop", None)
        if (
            role == "user"
            and complete
            and _text_only(turn)
            and capabilities(model).text_turns_as_realtime_input
        ):
            return "text", content_text(turn)
    return "clientContent", body


def user_texts(body: dict[str, Any]) -> list[str]:
    """Text of the user turns in a clientContent (for the recorder)."""
    return [
        text
        for turn in body.get("turns") or ()
        if isinstance(turn, dict) and (turn.get("role") or "user") == "user"
        if (text := content_text(turn).strip())
    ]
