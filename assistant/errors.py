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
