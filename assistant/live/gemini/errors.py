"""What a Gemini-path client is told when something ends: Google's close reasons, the
invalid-argument error, and the (code, reason) for each way a session ends."""

from __future__ import annotations

from assistant.live.close_codes import GeminiCode, close_reason
from assistant.live.errors import EndKind, SessionEnd

REASON_INVALID_ARGUMENT = "Request contains an invalid argument."
REASON_BAD_JSON = "Invalid JSON payload received. Unexpected token."
REASON_BAD_KEY = "API key not valid. Please pass a valid API key."
REASON_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
REASON_SESSION_NOT_FOUND = "BidiGenerateContent session not found"
REASON_UNAVAILABLE = "The service is currently unavailable."
REASON_INTERNAL = "Internal error encountered."


def reason_unknown_field(name: str, path: str = "") -> str:
    where = f" at '{path}'" if path else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'


def reason_model_not_allowed(model: str, version: str) -> str:
    return (
        f"models/{model} is not found for API version {version}, or is not allowed on this "
        "Pastra server."
    )


def invalid(reason: str = REASON_INVALID_ARGUMENT) -> SessionEnd:
    return SessionEnd(EndKind.BAD_MESSAGE, reason)


_CLOSES = {
    EndKind.NORMAL: (GeminiCode.NORMAL, ""),
    EndKind.CLIENT_GONE: (GeminiCode.NORMAL, ""),
    EndKind.UPSTREAM_ENDED: (GeminiCode.NORMAL, None),
    EndKind.SHUTDOWN: (GeminiCode.SERVICE_RESTART, None),
    EndKind.BAD_MESSAGE: (GeminiCode.INVALID_ARGUMENT, None),
    EndKind.TOO_LARGE: (GeminiCode.TOO_BIG, None),
    EndKind.NOT_FOUND: (GeminiCode.POLICY, REASON_SESSION_NOT_FOUND),
    EndKind.UPSTREAM_UNAVAILABLE: (GeminiCode.INTERNAL, REASON_UNAVAILABLE),
    EndKind.UPSTREAM_REJECTED: (GeminiCode.INTERNAL, None),
    EndKind.INTERNAL: (GeminiCode.INTERNAL, REASON_INTERNAL),
}


def gemini_close(end: SessionEnd) -> tuple[int, str]:
    """Close code and reason for a Gemini-path client (Google-like where Google has one;
    None above: the end's own message)."""
    if end.kind is EndKind.UPSTREAM_REJECTED and end.upstream_code:
        return end.upstream_code, close_reason(end.upstream_reason or end.message)
    code, reason = _CLOSES.get(end.kind, (GeminiCode.POLICY, None))
    return int(code), close_reason(end.message if reason is None else reason)
