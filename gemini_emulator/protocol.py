"""Wire format: JSON, close codes and reasons, camel/snake normalising, base64.

The real server parses client JSON with the proto3 JSON mapper, so field names may be
camelCase or snake_case at every level except inside free-form Struct payloads
(`functionCall.args`, `functionResponse.response`, schemas), and unknown names close the
socket with 1007. `normalize_message` reproduces that: it returns the message with every
known field renamed to camelCase and Struct payloads untouched, or raises ProtocolError.
The field tables it walks are in `schema`.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any

from .schema import CLIENT_MESSAGE, LEAF, STRUCT, Msg, Rep

try:  # orjson is optional: ~5x faster on the hot path, stdlib json as fallback.
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)

    JSONDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised only without orjson

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(data: bytes | str) -> Any:
        return json.loads(data)

    JSONDecodeError = json.JSONDecodeError


def compact_json(value: Any) -> str:
    """Compact JSON as written in replies (`NAME returned {"a":1}`), keys in given order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- Close codes and Google's reason texts (protocol doc section 5.5) -------------------

INVALID_ARGUMENT = 1007
POLICY = 1008
INTERNAL = 1011

REASON_BAD_KEY = "API key not valid. Please pass a valid API key."
REASON_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
REASON_INVALID_ARGUMENT = "Request contains an invalid argument."
REASON_MEDIA_CHUNKS = (
    "realtime_input.media_chunks is deprecated. Use audio, video, or text instead."
)
REASON_SESSION_NOT_FOUND = "BidiGenerateContent session not found"
REASON_DEADLINE = "Deadline expired before operation could complete."
REASON_INTERNAL = "Internal error encountered."
REASON_NO_VOICES = "Cannot extract voices from a non-audio request."
REASON_NOT_SUPPORTED = "Operation is not implemented, or supported, or enabled."
REASON_BAD_AUDIO = (
    "error when processing input audio, please check if the inputaudio is in valid format: "
    "16khz s16le pcm, mono channel."
)
REASON_BAD_JSON = "Invalid JSON payload received. Unexpected token."


def reason_model_not_found(model: str, version: str) -> str:
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    return (
        f"{name} is not found for API version {version}, or is not supported for "
        "bidiGenerateContent. Call ListModels to see the list of available models and their "
        "supported methods."
    )


def reason_unknown_field(name: str, path: str) -> str:
    where = f" at '{path}'" if path else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'


def reason_invalid_value(path: str, proto: str, value: Any) -> str:
    shown = value if isinstance(value, str) else compact_json(value)
    return f"Invalid JSON payload received. Invalid value at '{path}' ({proto}), \"{shown}\""


def reason_resource_exhausted(trace_id: str) -> str:
    return (
        f"Request trace id: {trace_id}, [ORIGINAL ERROR] generic::resource_exhausted: "
        "RESOURCE_EXHAUSTED: Maximum concurrent sessions exceeded."
    )


def close_reason(text: str) -> str:
    """Cut a reason to the 123 bytes a close frame can carry (as Google's are cut)."""
    data = text.encode()
    if len(data) <= 123:
        return text
    return data[:123].decode(errors="ignore")


class ProtocolError(Exception):
    """The client broke the protocol; the session closes with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = close_reason(reason)


def invalid_argument() -> ProtocolError:
    return ProtocolError(INVALID_ARGUMENT, REASON_INVALID_ARGUMENT)


# --- Normalising ------------------------------------------------------------------------

_CAMEL: dict[str, str] = {}
_SNAKE: dict[str, str] = {}
_SNAKE_RE = re.compile(r"(?<!^)(?=[A-Z])")


def to_camel(name: str) -> str:
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


def to_snake(name: str) -> str:
    cached = _SNAKE.get(name)
    if cached is None:
        cached = _SNAKE_RE.sub("_", name).lower()
        _SNAKE[name] = cached  # only called with schema names: bounded
    return cached


def parse_message(raw: str | bytes) -> tuple[str, dict[str, Any]]:
    """Decode and normalise one client frame: (kind, body), or ProtocolError(1007)."""
    try:
        message = loads(raw)
    except JSONDecodeError:
        raise ProtocolError(INVALID_ARGUMENT, REASON_BAD_JSON) from None
    return normalize_message(message)


def normalize_message(message: Any) -> tuple[str, dict[str, Any]]:
    """Validate a parsed client message; return (kind, body) with camelCase keys.

    Raises ProtocolError(1007) for unknown names, wrong shapes, or not exactly one kind.
    """
    if not isinstance(message, dict):
        raise invalid_argument()
    normalized = _normalize(message, CLIENT_MESSAGE, "")
    if len(normalized) != 1:
        raise invalid_argument()
    ((kind, body),) = normalized.items()
    if not isinstance(body, dict):
        raise invalid_argument()
    return kind, body


def _normalize(value: dict[str, Any], schema: Msg, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = schema.fields
    for key, item in value.items():
        name = to_camel(key)
        if name not in fields:
            raise ProtocolError(INVALID_ARGUMENT, reason_unknown_field(key, path))
        if name in out:  # both spellings of one field
            raise invalid_argument()
        child = fields[name]
        if child is LEAF or child is STRUCT or item is None:
            out[name] = item
            continue
        child_path = f"{path}.{to_snake(name)}" if path else to_snake(name)
        if isinstance(child, Rep):
            if not isinstance(item, list):
                raise ProtocolError(
                    INVALID_ARGUMENT,
                    reason_invalid_value(child_path, _proto_of(child.item), item),
                )
            if isinstance(child.item, Msg):
                out[name] = [
                    _normalize_msg(element, child.item, f"{child_path}[{index}]")
                    for index, element in enumerate(item)
                ]
            else:
                out[name] = item
        else:
            out[name] = _normalize_msg(item, child, child_path)
    return out


def _normalize_msg(value: Any, schema: Msg, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(INVALID_ARGUMENT, reason_invalid_value(path, schema.proto, value))
    return _normalize(value, schema, path)


def _proto_of(item: Any) -> str:
    return item.proto if isinstance(item, Msg) else "TYPE_STRING"


# --- base64 -------------------------------------------------------------------------------

URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def b64decode(data: Any, path: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; ProtocolError(1007) otherwise."""
    if not isinstance(data, str):
        raise ProtocolError(INVALID_ARGUMENT, reason_invalid_value(path, "TYPE_BYTES", data))
    text = data.translate(URLSAFE_TO_STANDARD) if ("-" in data or "_" in data) else data
    missing = -len(text) % 4
    if missing:
        text += "=" * missing
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        shown = data if len(data) <= 24 else data[:24] + "..."
        raise ProtocolError(
            INVALID_ARGUMENT,
            f"Invalid JSON payload received. Invalid value at '{path}' (TYPE_BYTES), "
            f'Base64 decoding failed for "{shown}"',
        ) from None


def b64len(data: str) -> int:
    """Decoded length of a base64 string without decoding it (echo mode's byte count)."""
    size = len(data)
    if size and data[-1] == "=":
        size -= 2 if size > 1 and data[-2] == "=" else 1
    return size * 3 // 4


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


# --- Small readers ----------------------------------------------------------------------


def content_text(content: Any) -> str:
    """Concatenated text parts of a normalised Content."""
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts") or []
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def duration_text(seconds: float) -> str:
    """A protobuf Duration in JSON form: "50s", "1.500s"."""
    seconds = round(seconds, 3)
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"
