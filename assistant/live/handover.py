"""When to hand a session over to a new upstream connection after Gemini's goAway: a pure,
synchronous state machine (no I/O, no clock of its own: callers pass `now`).

The rule (docs/bridge-notes.md, "Upstream lifecycle"): hand over at a turn boundary, i.e. no
reply in progress, none due (the client ended a turn and its `turnComplete` has not come)
and no tool call of this connection pending; and only once the resumption update that
follows the boundary has arrived, so the new connection resumes with that turn in its
context. Without that update, at most HANDLE_WAIT_SECONDS after `turnComplete`. The goAway's
`timeLeft` bounds everything: at the latest at `timeLeft - HANDOVER_MARGIN`, or at
HANDOVER_SHARE of a short `timeLeft`, whichever is later.

A goAway soon after connecting (a young connection, `hold_until` set by the link) is not
followed at once: the handover waits on the still-open connection until `hold_until` (the
link's backoff), then follows the same rule; the goAway deadline still bounds it. Without
this an idle session would hand over on every goAway at once, in a loop.

Who asks what: the session's message handler reports facts (`model_output`,
`user_turn_ended`, `turn_complete`, `handle_updated`, `go_away`) and calls `plan` after each
message; the upstream link stops reading when `handover_now`; the housekeeper forces the
handover when `due(now)`; the link calls `connection_closed` whenever a connection ends.
"""

from __future__ import annotations

HANDOVER_MARGIN = 2.0
HANDOVER_SHARE = 0.75
HANDLE_WAIT_SECONDS = 1.0


class HandoverPlanner:
    """The turn and goAway facts of one session's current upstream connection."""

    __slots__ = (
        "awaiting_reply",
        "deadline",
        "goaway_deadline",
        "goaway_seen",
        "handle_fresh",
        "handover_now",
        "hold_until",
        "model_active",
        "turn_ended_at",
    )

    def __init__(self) -> None:
        self.model_active = False  # a reply is in progress (model output since turnComplete)
        self.awaiting_reply = False  # the client ended a turn; its reply has not completed
        self.handle_fresh = True  # the latest handle is newer than the last turnComplete
        self.turn_ended_at = 0.0
        self.goaway_seen = False
        self.deadline: float | None = None  # hand over at this time at the latest
        self.handover_now = False  # hand over as soon as the current message is handled
        self.goaway_deadline: float | None = None  # timeLeft - margin: never later than this
        self.hold_until = 0.0  # a young connection: no handover before this time

    # --- facts ----------------------------------------------------------------------------

    def model_output(self) -> None:
        self.model_active = True

    def user_turn_ended(self) -> None:
        self.awaiting_reply = True

    def handle_updated(self) -> None:
        self.handle_fresh = True

    def turn_complete(self, now: float) -> None:
        self.model_active = self.awaiting_reply = False
        self.handle_fresh = False  # its resumption update follows
        self.turn_ended_at = now

    def go_away(self, time_left: float, now: float, *, calls_pending: bool) -> bool:
        """Gemini will close this connection in `time_left` seconds. Returns whether the
        deadline is to be watched (the handover did not become immediate)."""
        self.goaway_seen = True
        margin = min(HANDOVER_MARGIN, time_left * (1 - HANDOVER_SHARE))
        self.deadline = self.goaway_deadline = now + max(0.0, time_left - margin)
        self.plan(calls_pending=calls_pending, now=now)
        return not self.handover_now

    # --- decisions --------------------------------------------------------------------------

    def at_boundary(self, *, calls_pending: bool) -> bool:
        return not self.model_active and not self.awaiting_reply and not calls_pending

    def plan(self, *, calls_pending: bool, now: float | None = None) -> bool:
        """After a message: decide on the handover once goAway was seen. Returns whether the
        deadline moved earlier (the caller re-arms its timer). `now` (None: no hold) checks
        the young connection's hold."""
        if not self.goaway_seen or self.handover_now:
            return False
        if not self.at_boundary(calls_pending=calls_pending):
            return False
        if now is not None and now < self.hold_until:
            if self.deadline is None or self.hold_until < self.deadline:
                self.deadline = self.hold_until
                return True
            return False
        if self.handle_fresh:
            self.handover_now = True
            return False
        wait_until = self.turn_ended_at + HANDLE_WAIT_SECONDS
        if self.deadline is None or wait_until < self.deadline:
            self.deadline = wait_until
            return True
        return False

    def due(self, now: float, *, calls_pending: bool = False) -> bool:
        """The deadline has passed without a handover: force it now (True once). A young
        connection's hold that ends mid-turn only gives way to the usual rule (the goAway
        deadline stands)."""
        if self.deadline is None or now < self.deadline or self.handover_now:
            return False
        held = self.hold_until and self.deadline <= self.hold_until
        if held and self.goaway_deadline is not None and now < self.goaway_deadline:
            self.hold_until = 0.0
            self.deadline = self.goaway_deadline
            if not self.at_boundary(calls_pending=calls_pending):
                return False
            if not self.handle_fresh:
                self.deadline = min(self.deadline, self.turn_ended_at + HANDLE_WAIT_SECONDS)
                if now < self.deadline:
                    return False
        self.deadline = None
        return True

    def connection_closed(self) -> bool:
        """The connection ended (handover or loss): start afresh for the next one. Returns
        whether a reply was in progress (it is lost with the connection)."""
        cut = self.model_active
        self.model_active = False
        self.handover_now = False
        self.goaway_seen = False
        self.deadline = self.goaway_deadline = None
        self.hold_until = 0.0  # the link sets it again for the next connection
        self.handle_fresh = True  # the next connection starts from the latest handle
        return cut
