"""The web UI's protocol over a live session (docs/browser-protocol.md): binary PCM16 and
JSON messages from the browser become session calls; session events become JSON events and
binary model audio; every end becomes a close code with a human-readable reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from assistant import metrics
from assistant.live import browser_protocol as bp
from assistant.live.close_codes import CloseCode, close_reason, web_close_code
from assistant.live.contract import Adapter, Close, SessionSpec, allowed_model
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini import setup as policy
from assistant.live.gemini.reasons import is_waiting, reason_text
from assistant.live.gemini.server import ServerView, grounding_summary, usage_counts
from assistant.live.gemini.wire import b64decode, dumps
from assistant.live.recorder import TurnSummary
from assistant.live.tool_calls import Routing
from assistant.models import Conversation

if TYPE_CHECKING:
    from assistant.live.session import LiveSession


ACTIVITY_START = b'{"realtimeInput":{"activityStart":{}}}'
ACTIVITY_END = b'{"realtimeInput":{"activityEnd":{}}}'


def _stopped_note(heard: str) -> bytes:
    said = f' It heard: "{heard}"' if heard else ""
    note = f"(I stopped your reply.{said})"
    return dumps({"clientContent": {"turns": [{"role": "user", "parts": [{"text": note}]}]}})


class WebAdapter(Adapter):
    path_name = "web"

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self._thinking = False  # a `thinking` event went out for the reply still to come
        self._status = ""  # interactionStatus of the message that completes the turn
        self._manual = False  # push-to-talk: the page brackets speech (activity.start/end)
        self._in_activity = False
        self._replying = False  # the model's reply is coming (until its turn completes)
        self._cut = False  # the person stopped it: the rest is not sent to the page

    def close(self, end: SessionEnd) -> Close:
        code = web_close_code(end)
        frames = [bp.error_event(code, end.message)] if code != CloseCode.NORMAL else []
        return frames, int(code), close_reason(end.message)

    # --- browser → server ---------------------------------------------------------------

    def on_bytes(self, data: bytes) -> SessionSpec | None:
        # Push-to-talk: audio outside activity.start/end would close Gemini's session (1007,
        # gemini-live-protocol.md §2.3); a frame still in flight after the release is dropped.
        if self.session is not None and (self._in_activity or not self._manual):
            self.session.push_pcm(data)
        return None

    def on_text(self, text: str) -> SessionSpec | None:
        message = bp.parse_message(text)
        kind = message["type"]
        session = self.session
        if kind == "start":
            if session is not None:
                raise bp.bad("`start` was already sent.")
            metrics.CONTROL_IN.inc()
            return self._start(bp.read_start(message))
        if session is None:
            raise bp.bad(f"Send `start` before `{kind}`.")
        if kind == "video":
            session.push_video(*bp.read_video(message))
            return None
        metrics.CONTROL_IN.inc()
        session.limiter.check_control(len(text))
        if kind == "text":
            text, message_id = bp.read_text(message)
            session.text(text)
            if message_id:  # the page keeps it (to send again after a reconnect) until this
                self.downlink.put(bp.event("received", id=message_id))
        elif kind == "mic.stopped":
            if not self._manual:  # audioStreamEnd is for automatic activity detection only
                session.audio_stream_end()
        elif kind == "interrupt":
            self._interrupt(*bp.read_interrupt(message))
        elif kind in ("activity.start", "activity.end"):
            self._activity(kind == "activity.start")
        elif kind == "tool.result":
            session.tool_response([bp.read_tool_result(message)])
        elif kind == "ping":
            self.downlink.put(bp.event("pong"))
        elif kind == "stop":
            raise SessionEnd(EndKind.NORMAL)
        return None

    def _interrupt(self, played_ms: int, heard: str, by: str) -> None:
        """The person stopped the reply (the page has already silenced it): the rest of it is
        not sent, the record says how much was heard, and Gemini is told to stop where
        something documented does that. A typed message (`by: "text"`, sent right after) and
        speech with automatic detection stop it themselves ("text counts as activity",
        barge-in: gemini-live-protocol.md §2.3 and §5, compiled 2026-11)."""
        session = self.session
        data = {"played_ms": played_ms, "by": by, **({"heard": heard} if heard else {})}
        session.recorder.session_event("interrupted_by_user", **data)
        if not self._replying:
            return  # the reply was whole already (the page was still playing it): nothing runs
        self._cut = True  # Gemini's `interrupted`, when it comes, is recorded as the cut
        if by != "button":
            return  # the text, or the press of push-to-talk (activity.start), comes next
        if session.spec.model not in policy.CLIENT_CONTENT_SEED_ONLY:
            # No "stop" message exists; clientContent "will interrupt any current model
            # generation" and, without turnComplete, waits for more (§2.2 [DOC S6/S7, S10]):
            # a note of what the person heard, and no new reply, whatever the detection mode.
            session.push_control(_stopped_note(heard))
        elif self._manual and not self._in_activity:
            # Where clientContent only seeds history, manual detection's activity interrupts
            # (START_OF_ACTIVITY_INTERRUPTS, the default), at the cost of an empty turn.
            session.push_control(ACTIVITY_START)
            session.push_control(ACTIVITY_END)
        # Else (automatic detection there) nothing documented stops it: the rest is dropped.

    def _activity(self, start: bool) -> None:
        if not self._manual:
            raise bp.bad("`activity.start` and `activity.end` need `start.activity: manual`.")
        if start == self._in_activity:
            return
        self._in_activity = start
        self.session.push_control(ACTIVITY_START if start else ACTIVITY_END)
        if not start:
            self.session.user_turn_ended()

    def _start(self, options: dict) -> SessionSpec:
        model = allowed_model(options["model"])
        if model is None:
            raise SessionEnd(
                EndKind.MODEL_NOT_ALLOWED,
                f"The model {options['model'][:60]} is not available on this server.",
            )
        voice = options["voice"] or settings.PASTRA_VOICE
        setup = policy.web_setup(
            model=model,
            voice=voice,
            text_only=options["modality"] == "text",
            persona=options["persona"],
            functions=options["functions"],
            language=options["language"],
            media_resolution=options["media_resolution"],
            manual_activity=options["manual_activity"],
        )
        self._manual = options["manual_activity"]
        return SessionSpec(
            user_id=self.user_id,
            client_kind=Conversation.ClientKind.WEB,
            setup=setup,
            model=model,
            voice=voice,
            conversation_id=options["conversation"] or None,
        )

    # --- sink: session → browser ----------------------------------------------------------

    def _session_event(self, state: str) -> None:
        session = self.session
        self.downlink.put(
            bp.event(
                "session",
                state=state,
                conversation=str(session.conversation_id),
                resumed=session.resumed,
                # Gemini took the resumption handle: the model remembers the conversation.
                context="resumed" if session.link.resumed else "new",
                activity="manual" if self._manual else "auto",
                model=session.spec.model,
                voice=session.spec.voice,
                emulator=bool(settings.PASTRA_UPSTREAM_IS_EMULATOR),
            )
        )

    def started(self, session: LiveSession) -> None:
        self._session_event("connecting")

    def ready(self) -> None:
        self._session_event("ready")

    def state(self, state: str) -> None:
        self._session_event(state)

    def tool_activity(self, **event) -> None:
        if "args" in event:
            event["args"] = bp.short_args(event["args"])
        card = event.pop("card", None)
        self.downlink.put(bp.event("tool", **event))
        if card:  # a server-side calculation, shown with code execution's cards
            put, code = self.downlink.put, str(card.get("code", ""))
            put(bp.event("code", language=card.get("language", ""), code=code))
            put(bp.event("code.result", outcome="OUTCOME_OK", output=str(card.get("output", ""))))

    def server_message(self, view: ServerView, routing: Routing) -> None:
        put, event = self.downlink.put, bp.event
        if view.voice_activity:
            put(event("voice", activity=view.voice_activity))
        if view.interim_input is not None:
            put(event("transcript.interim", role="user", text=view.interim_input))
        if view.thinking and not self._thinking:
            self._thinking = True
            put(event("thinking"))
        if view.audio or view.output_text or view.texts:
            self._thinking = False
            self._replying = True
        cut = self._cut
        if view.audio and not self.session.emulate_text and not cut:
            for data in view.audio:
                self.downlink.put_audio(b64decode(data))
        if view.input_text:
            put(event("transcript", role="user", text=view.input_text, final=False))
        if view.output_text and not cut:
            put(event("transcript", role="model", text=view.output_text, final=False))
        for text in () if cut else view.texts:
            put(event("transcript", role="model", text=text, final=False, source="text"))
        for kind, first, second in view.code:
            if kind == "code":
                put(event("code", language=first, code=second))
            else:
                put(event("code.result", outcome=first, output=second))
        if view.grounding is not None:
            put(event("grounding", **grounding_summary(view.grounding)))
        for call in routing.client_calls:
            put(event("tool.call", id=call.get("id"), name=call.get("name"), args=call.get("args")))
        for call_id in routing.client_cancelled:
            put(event("tool", phase="cancelled", id=call_id, executor="client"))
        if view.interrupted:
            put(event("interrupted"))
        self._turn_end(view)
        if view.usage is not None:
            prompt, response, total = usage_counts(view.usage)
            put(event("usage", prompt_tokens=prompt, response_tokens=response, total_tokens=total))

    def _turn_end(self, view: ServerView) -> None:
        """Why a turn ends without (all of) a reply: a refusal or a stop says so in words
        (`turn.reason`); a model waiting for the person to go on says that (`waiting`)."""
        reason = view.turn_reason
        if reason and not is_waiting(reason):
            self.downlink.put(bp.event("turn.reason", reason=reason, message=reason_text(reason)))
        if view.waiting_for_input or is_waiting(reason):
            self.downlink.put(bp.event("waiting", reason=reason))
        self._status = view.interaction_status

    def features_unavailable(self, features: list[str]) -> None:
        names = " and ".join(policy.BUILTIN_NAMES.get(f, f) for f in features)
        verb, it = ("are", "them") if len(features) > 1 else ("is", "it")
        message = (
            f"{names[:1].upper()}{names[1:]} {verb} not available with "
            f"{self.session.spec.model}: the conversation goes on without {it}."
        )
        self.downlink.put(
            bp.event("notice", code="features_unavailable", features=features, message=message)
        )

    def tools_unavailable(self, servers: list[str]) -> None:
        names = ", ".join(servers)
        message = (
            f"Tools from {names} are not available right now: "
            "the conversation goes on without them."
        )
        self.downlink.put(
            bp.event("notice", code="tools_unavailable", servers=servers, message=message)
        )

    def turn_finished(self, summary: TurnSummary) -> None:
        put, event = self.downlink.put, bp.event
        if summary.user:
            put(event("transcript", role="user", text=summary.user, final=True))
        if summary.model and not self._cut:  # a stopped reply keeps the words heard
            put(event("transcript", role="model", text=summary.model, final=True))
        status = {"status": self._status} if self._status else {}
        self._thinking, self._status, self._replying, self._cut = False, "", False, False
        put(event("turn.complete", turn=summary.turn, interrupted=summary.interrupted, **status))
