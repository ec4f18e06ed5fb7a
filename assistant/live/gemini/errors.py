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


# Ephemeral tokens (docs/ephemeral-tokens.md): the Constrained socket's refusals and the
# minting endpoint's (assistant/auth_tokens.py) messages about the locked setup.
REASON_NOT_EPHEMERAL = (
    "BidiGenerateContentConstrained takes an ephemeral token (auth_tokens/...); "
    "use BidiGenerateContent with an access token."
)
REASON_MASK_INVALID = "field_mask is invalid for BidiGenerateContentSetup"
REASON_MASK_UNCOVERED = (
    "BidiGenerateContentSetup contains fields that are not specified in field_mask"
)
REASON_MASK_NO_MODEL = "field_mask locks model, but bidiGenerateContentSetup names no model"
_TOKEN_REFUSALS = {  # EphemeralTokenRefused.reason → (end kind, close reason)
    "invalid": (
        EndKind.EPHEMERAL_INVALID,
        "Ephemeral token not valid. Please mint a new one with auth_tokens.create.",
    ),
    "revoked": (EndKind.EPHEMERAL_INVALID, "Ephemeral token not valid: it was revoked."),
    "minter_revoked": (
        EndKind.EPHEMERAL_INVALID,
        "Ephemeral token not valid: the access token that minted it was revoked.",
    ),
    "expired": (
        EndKind.EPHEMERAL_INVALID,
        "Ephemeral token expired: its expireTime has passed. Please mint a new one.",
    ),
    "no_new_sessions": (
        EndKind.EPHEMERAL_REFUSED,
        "Ephemeral token starts no new session: its newSessionExpireTime has passed.",
    ),
    "used_up": (EndKind.EPHEMERAL_REFUSED, "Ephemeral token has no uses left."),
}


def token_refusal(reason: str, uses: int = 0) -> SessionEnd:
    """What an ephemeral token's refusal (assistant.errors.EphemeralTokenRefused) ends with:
    1007 for a token that is not (or no longer) valid, 1008 for one that may not start a
    new session now."""
    kind, text = _TOKEN_REFUSALS.get(reason, _TOKEN_REFUSALS["invalid"])
    if reason == "used_up" and uses:
        text = f"Ephemeral token has no uses left: it allowed {uses} session{'s' * (uses > 1)}."
    return SessionEnd(kind, text)


def reason_model_locked(model: str, asked: str) -> str:
    asked = asked if asked.startswith("models/") else f"models/{asked}"
    return f"This ephemeral token is locked to models/{model}; the setup asked for {asked}."


def reason_fields_locked(paths: list[str]) -> str:
    return (
        "BidiGenerateContentSetup contains fields locked by the token's field_mask: "
        + ", ".join(paths)
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
    EndKind.EPHEMERAL_INVALID: (GeminiCode.INVALID_ARGUMENT, None),
    EndKind.EPHEMERAL_REFUSED: (GeminiCode.POLICY, None),
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
