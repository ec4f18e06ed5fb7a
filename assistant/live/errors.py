"""Why a live session ends: one adapter-neutral vocabulary, mapped to close codes by each
adapter (browser_protocol.web_close for the web UI, protocol.gemini_close for Gemini clients)."""

from enum import StrEnum


class EndKind(StrEnum):
    NORMAL = "normal"  # the client said stop / closed the socket
    CLIENT_GONE = "client_gone"
    UPSTREAM_ENDED = "upstream_ended"  # upstream closed cleanly and did not come back
    ENDED = "ended"  # staff, `end_session`, logout (over the channel layer)
    SIGNED_OUT = "signed_out"  # its credential is gone: password, account or token
    SUPERSEDED = "superseded"  # the conversation was resumed by another socket
    SHUTDOWN = "shutdown"  # this worker is stopping
    BAD_MESSAGE = "bad_message"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    START_TIMEOUT = "start_timeout"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    TOOL_NOT_AVAILABLE = "tool_not_available"  # a Google-run tool the model or server lacks
    NOT_FOUND = "not_found"  # resume target unknown, foreign or expired
    EPHEMERAL_INVALID = "ephemeral_invalid"  # ephemeral token unknown, revoked or expired
    EPHEMERAL_REFUSED = "ephemeral_refused"  # ephemeral token valid, but starts no new session now
    TOO_MANY_SESSIONS = "too_many_sessions"
    DAILY_LIMIT = "daily_limit"
    IDLE = "idle"
    SLOW_CLIENT = "slow_client"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # retries exhausted
    UPSTREAM_REJECTED = "upstream_rejected"  # 1007/1008 from Gemini: retrying would not help
    INTERNAL = "internal"


DEFAULT_MESSAGES = {
    EndKind.NORMAL: "Session ended.",
    EndKind.CLIENT_GONE: "The client went away.",
    EndKind.UPSTREAM_ENDED: "The assistant ended the session.",
    EndKind.ENDED: "Ended by an administrator.",
    EndKind.SIGNED_OUT: "You are signed out. Sign in again.",
    EndKind.SUPERSEDED: "This conversation was resumed in another window.",
    EndKind.SHUTDOWN: "The server is restarting. Reconnect to continue.",
    EndKind.BAD_MESSAGE: "Malformed message.",
    EndKind.TOO_LARGE: "Message too large.",
    EndKind.RATE_LIMITED: "Too many messages. Slow down.",
    EndKind.START_TIMEOUT: "No start message arrived in time.",
    EndKind.MODEL_NOT_ALLOWED: "That model is not available on this server.",
    EndKind.TOOL_NOT_AVAILABLE: "That tool is not available on this server.",
    EndKind.NOT_FOUND: "That conversation does not exist or has expired.",
    EndKind.EPHEMERAL_INVALID: "Ephemeral token not valid.",
    EndKind.EPHEMERAL_REFUSED: "Ephemeral token can start no new session.",
    EndKind.TOO_MANY_SESSIONS: "You have too many live sessions open. Close one and try again.",
    EndKind.DAILY_LIMIT: "You have used today's live time. It resets at midnight.",
    EndKind.IDLE: "Session ended after a period without activity.",
    EndKind.SLOW_CLIENT: "Your connection could not keep up. Reconnect to continue.",
    EndKind.UPSTREAM_UNAVAILABLE: "The assistant is unreachable right now. Try again in a moment.",
    EndKind.UPSTREAM_REJECTED: "The assistant rejected the request.",
    EndKind.INTERNAL: "Something went wrong on the server.",
}

# Ends that are the client's or an operator's doing, not a failure of the conversation.
CLEAN_ENDS = frozenset(
    {
        EndKind.NORMAL,
        EndKind.CLIENT_GONE,
        EndKind.ENDED,
        EndKind.SIGNED_OUT,
        EndKind.SUPERSEDED,
        EndKind.SHUTDOWN,
        EndKind.IDLE,
        EndKind.UPSTREAM_ENDED,
        EndKind.EPHEMERAL_INVALID,  # an open session reached its ephemeral token's expireTime
    }
)


class SessionEnd(Exception):
    """Raised (or passed to LiveSession.end) to end a session; carries a human message and,
    for upstream rejections, Gemini's own close code and reason (passed on to SDK clients)."""

    def __init__(
        self,
        kind: EndKind,
        message: str = "",
        *,
        upstream_code: int | None = None,
        upstream_reason: str = "",
    ) -> None:
        self.kind = kind
        self.message = message or DEFAULT_MESSAGES[kind]
        self.upstream_code = upstream_code
        self.upstream_reason = upstream_reason
        super().__init__(f"{kind}: {self.message}")

    @property
    def clean(self) -> bool:
        return self.kind in CLEAN_ENDS
