"""One upstream message through the session: read it once, record what it says, keep the
turn facts the handover planner needs, route its tool calls, time the reply's first audio,
and hand the view (with the routing) to the client adapter."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from assistant import metrics
from assistant.live import handles
from assistant.live.gemini.reasons import is_waiting, reason_text
from assistant.live.gemini.server import (
    ServerView,
    grounding_summary,
    parse_server,
    usage_counts,
)
from assistant.live.tool_calls import NO_ROUTING, Routing

if TYPE_CHECKING:
    from assistant.live.session import LiveSession

logger = logging.getLogger(__name__)

STALE_TURN_END = 2.0  # an explicit end of turn this old with no reply is forgotten


class ReplyClock:
    """When the user's turn ended, for time to first audio (docs/bridge-notes.md)."""

    __slots__ = ("explicit", "started")

    def __init__(self) -> None:
        self.started = 0.0
        self.explicit = False

    def turn_ended(self, now: float) -> None:
        """The client ended its turn explicitly (text, audioStreamEnd, activityEnd, …)."""
        self.started = now
        self.explicit = True

    def heard(self, now: float, *, replying: bool) -> None:
        """An input transcription: voice-activity turns have no explicit end, so the latest
        transcription before the reply approximates it."""
        if not replying and (not self.explicit or now - self.started > STALE_TURN_END):
            self.started = now
            self.explicit = False

    def take(self) -> float:
        """The start of the reply's wait (0 when none), once."""
        started, self.started = self.started, 0.0
        return started

    def reset(self) -> None:
        self.started = 0.0
        self.explicit = False


class Inbound:
    def __init__(self, session: LiveSession) -> None:
        self._session = session
        self.clock = ReplyClock()

    def __call__(self, raw: bytes) -> None:
        session = self._session
        try:
            view = parse_server(raw)
        except ValueError:
            logger.warning("unreadable upstream message ignored")
            metrics.ERRORS.labels("upstream_message").inc()
            return
        now = session.last_activity = time.monotonic()
        recorder = session.recorder
        link = session.link
        planner = link.planner
        if view.go_away is not None:
            logger.warning("upstream goAway (timeLeft %.1fs)", view.go_away)
            recorder.session_event("go_away", time_left=view.go_away)
            if planner.go_away(view.go_away, now, calls_pending=session.tools.pending()):
                session.housekeeper.wake()
            return
        if view.setup_complete:
            return
        if view.resumption:
            link.handle = view.resumption
            planner.handle_updated()
            recorder.set_handle(view.resumption)
            session.client_handle = handles.issue(
                user_id=session.spec.user_id, conversation_id=session.conversation_id
            )
        if view.content is not None:
            if view.audio:
                session.audio_out += len(view.audio)
                planner.model_output()
                if self.clock.started and not session.emulate_text:
                    # The downlink observes time to first audio when this audio goes out.
                    session.downlink.first_audio_from = self.clock.take()
            if view.input_text:
                recorder.input_fragment(view.input_text)
                self.clock.heard(now, replying=planner.model_active)
            if view.output_text:
                planner.model_output()
                recorder.output_fragment(view.output_text)
            for text in view.texts:
                planner.model_output()
                recorder.model_text(text)
            for kind, first, second in view.code:
                recorder.code(kind, first, second)
            if view.grounding is not None:
                recorder.grounding(grounding_summary(view.grounding))
            if view.thinking:
                planner.model_output()  # a reply is on its way: no handover mid-thought
            if view.interrupted:
                recorder.interruption()
                session.downlink.clear_audio()
            if view.turn_reason or view.waiting_for_input:
                self._record_reason(view)
        routing = NO_ROUTING
        if view.calls or view.cancelled:
            client_calls: tuple = ()
            if view.calls:
                planner.model_output()
                client_calls = session.tools.on_tool_call(view.calls)
            cancelled = session.tools.on_cancel(view.cancelled) if view.cancelled else ()
            routing = Routing(client_calls, cancelled)
        if view.usage is not None:
            recorder.usage(*usage_counts(view.usage))
        session.sink.server_message(view, routing)
        if view.turn_complete:
            planner.turn_complete(now)
            self.clock.reset()
            link.turn_completed()
            session.sink.turn_finished(recorder.end_turn())
        if planner.goaway_seen and planner.plan(calls_pending=session.tools.pending(), now=now):
            session.housekeeper.wake()

    def _record_reason(self, view: ServerView) -> None:
        """Why the turn ended without (all of) a reply, in the record: a refused or stopped
        turn is an error with the reason in plain words (its raw value in `data`); a model
        waiting for the person to go on is a session event."""
        recorder = self._session.recorder
        reason = view.turn_reason
        if view.waiting_for_input or is_waiting(reason):
            recorder.session_event("waiting_for_input", turn_complete_reason=reason or None)
        if reason and not is_waiting(reason):
            recorder.error(reason_text(reason), code=reason, turn_complete_reason=reason)
