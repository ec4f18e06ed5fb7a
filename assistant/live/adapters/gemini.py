"""The Gemini Live wire protocol over a live session, for any Gemini client (google-genai
SDKs, the tutorial's JS): client messages become session calls (legacy forms translated);
upstream messages go back unchanged where nothing is the server's business, and rewritten
where something is (server-run tool calls, Google's handles, transcripts the client did not
ask for). Never shows the client a goAway, a reconnect or a server-executed call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistant import metrics
from assistant.live import credentials, handles
from assistant.live.close_codes import GeminiCode, close_reason
from assistant.live.contract import Adapter, Close, SessionSpec, allowed_model
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini import client as wire_client
from assistant.live.gemini import errors, wire
from assistant.live.gemini.constraints import apply_lock
from assistant.live.gemini.server import ServerView
from assistant.live.gemini.setup import ClientSetup, read_client_setup
from assistant.live.limits import MAX_CONTENT_BYTES, MAX_MESSAGE_BYTES
from assistant.live.tool_calls import Routing
from assistant.models import Conversation

if TYPE_CHECKING:
    from assistant.live.session import LiveSession
    from assistant.services import EphemeralGrant


class GeminiAdapter(Adapter):
    """`user_id` is None when the token was missing or wrong (`refusal` says how to close,
    or `token_given` which): the socket is accepted like Google's and refused at the first
    message. `ephemeral`: opened with an ephemeral token, whose lock and expiry apply."""

    path_name = "sdk"
    _replying = False  # model output forwarded, its turnComplete not yet

    def __init__(
        self,
        user_id: int | None,
        *,
        version: str,
        token_given: bool = False,
        refusal: tuple[int, str] | None = None,
        ephemeral: EphemeralGrant | None = None,
    ) -> None:
        self.user_id = user_id
        self.version = version
        self.ephemeral = ephemeral
        self._refusal = refusal
        if user_id is None and refusal is None:
            self._refusal = (
                (GeminiCode.INVALID_ARGUMENT, errors.REASON_BAD_KEY)
                if token_given
                else (GeminiCode.POLICY, close_reason(errors.REASON_NO_KEY))
            )

    def close(self, end: SessionEnd) -> Close:
        code, reason = self._refusal or errors.gemini_close(end)
        return [], int(code), reason

    # --- client → server ----------------------------------------------------------------

    def on_bytes(self, data: bytes) -> SessionSpec | None:
        return self.on_text(data)

    def on_text(self, data: str | bytes) -> SessionSpec | None:
        if self._refusal is not None:
            raise SessionEnd(EndKind.BAD_MESSAGE)  # closes with the refusal
        if self.ephemeral is not None and credentials.expired(self.ephemeral):
            raise errors.token_refusal("expired")  # its expireTime gates every message
        size = len(data)
        if size > MAX_MESSAGE_BYTES:
            raise SessionEnd(
                EndKind.TOO_LARGE,
                f"Request payload size exceeds the limit: {MAX_MESSAGE_BYTES} bytes.",
            )
        kind, body = wire_client.parse_client(data)
        session = self.session
        if kind == "realtimeInput" and session is not None:
            for piece in wire_client.realtime_parts(wire.normalize(body)):
                if type(piece) is wire_client.Media:
                    session.push_media(piece)
                    continue
                metrics.CONTROL_IN.inc()
                session.limiter.check_control(size)
                name, value = piece
                if name == "text":
                    session.text(value)
                elif name == "audioStreamEnd":
                    session.audio_stream_end()
                else:
                    session.push_control(wire.dumps({"realtimeInput": {name: value}}))
                    if name == "activityEnd":  # manual activity detection: the turn ends
                        session.user_turn_ended()
            return None
        if size > MAX_CONTENT_BYTES:
            raise SessionEnd(
                EndKind.TOO_LARGE,
                f"Request payload size exceeds the limit: {MAX_CONTENT_BYTES} bytes.",
            )
        metrics.CONTROL_IN.inc()
        if kind == "setup":
            if session is not None:
                raise errors.invalid()
            return self._setup(body)
        if session is None:  # anything before setup
            raise errors.invalid()
        session.limiter.check_control(size, limit=MAX_CONTENT_BYTES)
        body = wire.normalize(body)
        if kind == "clientContent":
            self._client_content(session, body)
        elif kind == "toolResponse":
            session.tool_response(body.get("functionResponses") or [])
        elif kind == "contextUpdate":
            wire_client.check_context_update(body)
            session.context_update(body)
        return None

    @staticmethod
    def _client_content(session: LiveSession, body: dict[str, Any]) -> None:
        action, value = wire_client.translate_client_content(body, model=session.spec.model)
        if action == "audioStreamEnd":
            session.audio_stream_end()
        elif action == "text":
            session.text(value)
        elif action == "clientContent":
            session.client_content(value)

    def _setup(self, body: dict) -> SessionSpec:
        grant = self.ephemeral
        if grant is not None:  # the token's locked setup (constraints.py)
            body = apply_lock(
                body,
                model=grant.model,
                setup=grant.setup,
                mask=grant.field_mask,
                resolve=allowed_model,
            )
        client = read_client_setup(body)
        requested = client.model.removeprefix("models/")
        model = allowed_model(requested)
        if model is None:
            raise SessionEnd(
                EndKind.MODEL_NOT_ALLOWED,
                errors.reason_model_not_allowed(requested, self.version),
            )
        conversation_id = None
        if client.resume_handle:
            conversation_id = handles.read(client.resume_handle, user_id=self.user_id)
            if conversation_id is None:
                raise SessionEnd(EndKind.NOT_FOUND)
        return SessionSpec(
            user_id=self.user_id,
            client_kind=Conversation.ClientKind.SDK,
            setup=client,
            model=model,
            voice=client.voice(),
            conversation_id=conversation_id,
            api_version=self.version,
            ephemeral_token_id=grant.token_id if grant is not None else None,
        )

    # --- sink: session → Gemini client ----------------------------------------------------

    # Reconnects (`state`), server-executed calls (`tool_activity`) and turn summaries are
    # none of a Gemini client's business: the Adapter's no-ops.

    def started(self, session: LiveSession) -> None:
        if self.ephemeral is not None:  # an open session ends at the token's expireTime
            session.tasks.spawn(credentials.expiry(self.ephemeral), "token expiry")

    def ready(self) -> None:
        self.downlink.put(wire.SETUP_COMPLETE)

    def turn_finished(self, summary) -> None:
        """A reply cut by an upstream loss ends as Google ends an interrupted one:
        `interrupted`, then `turnComplete` (the upstream's own turn ends pass through)."""
        if self._replying:
            self._replying = False
            self.downlink.put(wire.dumps({"serverContent": {"interrupted": True}}))
            self.downlink.put(wire.dumps({"serverContent": {"turnComplete": True}}))

    def server_message(self, view: ServerView, routing: Routing) -> None:
        session = self.session
        setup = session.spec.setup
        msg = view.msg
        out: dict | None = None  # a copy of the message, made at the first change
        if "sessionResumptionUpdate" in msg:
            if not setup.wants_resumption:
                out = dict(msg)
                del out["sessionResumptionUpdate"]
            elif view.resumption:  # Google's handle stays here; the client gets Pastra's
                out = dict(msg)
                out["sessionResumptionUpdate"] = {
                    "newHandle": session.client_handle,
                    "resumable": True,
                }
        if view.calls and len(routing.client_calls) != len(view.calls):
            out = out if out is not None else dict(msg)
            if routing.client_calls:  # server-executed calls are none of the client's business
                out["toolCall"] = {"functionCalls": list(routing.client_calls)}
            else:
                del out["toolCall"]
        if view.cancelled and len(routing.client_cancelled) != len(view.cancelled):
            out = out if out is not None else dict(msg)
            if routing.client_cancelled:
                out["toolCallCancellation"] = {"ids": list(routing.client_cancelled)}
            else:
                del out["toolCallCancellation"]
        content = view.content
        if content is not None:
            filtered = self._filter_content(view, setup)
            if filtered is not None:
                out = out if out is not None else dict(msg)
                if filtered:
                    out["serverContent"] = filtered
                else:
                    del out["serverContent"]
        audio = bool(view.audio) and not session.emulate_text
        if view.turn_complete:
            self._replying = False
        elif view.audio or view.output_text or view.texts or view.calls:
            self._replying = True  # a reply is on its way to the client
        if out is None:
            if audio and len(msg) == 1 and len(content) == 1:
                self.downlink.put_audio(view.raw)  # pure audio: may be dropped under pressure
            else:
                self.downlink.put(view.raw, has_audio=audio)
        elif out:
            self.downlink.put(wire.dumps(out), has_audio=audio)

    def _filter_content(self, view: ServerView, setup: ClientSetup) -> dict | None:
        """serverContent as this client gets it, or None when it goes unchanged."""
        content = view.content
        out: dict | None = None
        if not setup.wants_input_transcription:  # Pastra always asks upstream for them
            for name in ("inputTranscription", "interimInputTranscription"):
                if name in content:
                    out = out if out is not None else dict(content)
                    del out[name]
        if self.session.emulate_text:
            # The client asked for TEXT from an audio-only model: it gets the transcript
            # as text parts, and no audio.
            if "modelTurn" in content:
                out = out if out is not None else dict(content)
                turn = content["modelTurn"]
                parts = [part for part in turn.get("parts") or () if "inlineData" not in part]
                if view.output_text:
                    parts.append({"text": view.output_text})
                if parts:
                    out["modelTurn"] = {**turn, "parts": parts}
                else:
                    del out["modelTurn"]
            elif view.output_text:
                out = out if out is not None else dict(content)
                out["modelTurn"] = {"role": "model", "parts": [{"text": view.output_text}]}
        if not setup.wants_output_transcription and "outputTranscription" in content:
            out = out if out is not None else dict(content)
            del out["outputTranscription"]
        return out
