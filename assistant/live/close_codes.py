"""Close codes of Pastra's three sockets, in one place: the Gemini-compatible socket (Google's
codes), the web UI's `/ws/live/` (4xxx, mirrored in static/js/protocol.js and compared by
tests/js/logic.test.mjs) and the admin live view (static/staff/admin-live.js); plus the code
each way a session can end maps to on the web socket."""

from __future__ import annotations

from enum import IntEnum

from assistant.live.errors import EndKind, SessionEnd


class GeminiCode(IntEnum):
    """What Google's Live endpoint closes with (protocol doc section 5.5)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    ABNORMAL = 1006  # no close frame: the connection was lost (seen, never sent)
    INVALID_ARGUMENT = 1007
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    SERVICE_RESTART = 1012


class CloseCode(IntEnum):
    """Close codes the web UI may see (mirrored in static/js; reasons are human-readable)."""

    NORMAL = 1000
    SERVICE_RESTART = 4001  # the server is restarting: reconnect (resumes the conversation)
    BAD_MESSAGE = 4400  # malformed JSON, unknown type, invalid field
    UNAUTHENTICATED = 4401  # before accept: not logged in; after: signed out (credential gone)
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


class WatchCode(IntEnum):
    """The admin live view's refusals (before accept); static/staff/admin-live.js stops on them."""

    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404


_WEB_CODES = {
    EndKind.NORMAL: CloseCode.NORMAL,
    EndKind.CLIENT_GONE: CloseCode.NORMAL,
    EndKind.UPSTREAM_ENDED: CloseCode.NORMAL,
    EndKind.ENDED: CloseCode.ENDED,
    EndKind.SIGNED_OUT: CloseCode.UNAUTHENTICATED,
    EndKind.SUPERSEDED: CloseCode.SUPERSEDED,
    EndKind.SHUTDOWN: CloseCode.SERVICE_RESTART,
    EndKind.BAD_MESSAGE: CloseCode.BAD_MESSAGE,
    EndKind.TOO_LARGE: CloseCode.TOO_LARGE,
    EndKind.RATE_LIMITED: CloseCode.RATE_LIMITED,
    EndKind.START_TIMEOUT: CloseCode.START_TIMEOUT,
    EndKind.MODEL_NOT_ALLOWED: CloseCode.MODEL_NOT_ALLOWED,
    EndKind.TOOL_NOT_AVAILABLE: CloseCode.BAD_MESSAGE,  # the web UI asks for no such tool
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


def close_reason(text: str) -> str:
    """Cut a reason to the 123 bytes a close frame can carry."""
    data = text.encode()
    return text if len(data) <= 123 else data[:123].decode(errors="ignore")
