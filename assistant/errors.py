"""Domain errors the services raise, in Pastra's own terms (no HTTP or socket vocabulary):
views, commands and the live layer (assistant/live/lease.py) decide what each means to
their caller."""


class PastraError(Exception):
    """Base of the domain errors."""


class ConversationNotFound(PastraError):
    """No such conversation for this user (unknown, someone else's, or deleted)."""


class ConversationBusy(PastraError):
    """Another live session (maybe on another worker) holds this conversation's lease."""


class TooManySessions(PastraError):
    """The user already holds as many session leases as they may."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"{limit} live sessions open")


class DailyAllowanceUsed(PastraError):
    """The user has used today's live seconds."""

    def __init__(self, daily_seconds: int) -> None:
        self.daily_seconds = daily_seconds
        super().__init__(f"{daily_seconds} live seconds used today")


class EphemeralTokenRefused(PastraError):
    """An ephemeral token may not start (or resume) a session now. `reason` is one of
    the REASONS keys; the live layer words it for the client."""

    INVALID = "invalid"  # unknown, or its owner is inactive
    REVOKED = "revoked"
    MINTER_REVOKED = "minter_revoked"  # the personal access token it was minted with
    EXPIRED = "expired"  # expireTime passed
    NO_NEW_SESSIONS = "no_new_sessions"  # newSessionExpireTime passed
    USED_UP = "used_up"

    def __init__(self, reason: str, *, uses: int = 0) -> None:
        self.reason = reason
        self.uses = uses
        super().__init__(reason)


class CredentialRevoked(PastraError):
    """What a live session stands on is gone: its lease was dropped, its owner deactivated,
    or the token it was opened with revoked. `message` says which, in the user's words."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)
