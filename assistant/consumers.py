"""The two thin client adapters over the live bridge core (assistant/live/session.py).

LiveConsumer speaks the web UI's protocol on /ws/live/ (docs/browser-protocol.md);
GeminiConsumer speaks the Gemini Live wire protocol to any Gemini client (google-genai SDKs,
the tutorial's JS) with a personal access token. Both: no database or channel-layer work per
message (`dispatch` skips Channels' per-message `aclose_old_connections` thread hop for
`websocket.receive`), close codes with reasons, and a flush of the conversation when the
server shuts down (daphne cancels every application on SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from assistant import control, metrics, services
from assistant.live import browser_protocol as bp
from assistant.live import daphne_compat, handles
from assistant.live import protocol as p
from assistant.live.buffers import Downlink
from assistant.live.db import live_db
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.limits import MAX_CONTENT_BYTES, MAX_MESSAGE_BYTES
from assistant.live.recorder import TurnSummary
from assistant.live.session import LiveSession, SessionSpec
from assistant.models import Conversation
from pastra_site import logs

logger = logging.getLogger(__name__)

aauthenticate = live_db(services.access_token_authenticate)
daphne_compat.install()  # close codes and reasons reach the client under daphne

SETUP_TIMEOUT_SECONDS = 30.0


def _resolve_model(requested: str) -> str | None:
    return p.resolve_model(
        requested,
        default=settings.PASTRA_MODEL,
        aliases=settings.PASTRA_MODEL_ALIASES,
        allowed=settings.PASTRA_ALLOWED_MODELS,
    )


class _BridgeConsumer(AsyncWebsocketConsumer):
    """What both adapters share: the session's main task, groups, control events,
    shutdown. Subclasses implement on_text/on_bytes (sync), close_for(end) and the sink."""

    path_name = "?"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.session: LiveSession | None = None
        self.downlink: Downlink | None = None
        self._main: asyncio.Task | None = None
        self._watchdog: asyncio.Task | None = None
        self._groups: list[str] = []
        self._closed = False
        self._close_counted = False
        self._layer_down = False

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # Daphne cancels every application on shutdown: record what we have first.
            if self.session is not None:
                self.session.end(SessionEnd(EndKind.SHUTDOWN))
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._wait_main())
            raise

    async def dispatch(self, message):
        # The audio hot path: no `aclose_old_connections` (a thread hop) per frame.
        if message["type"] != "websocket.receive":
            await super().dispatch(message)
            return
        session = self.session
        if self._closed or (session is not None and session.ended):
            return
        try:
            text = message.get("text")
            if text is not None:
                if session is not None:
                    session.bytes_in += len(text)
                self.on_text(text)
            else:
                data = message.get("bytes") or b""
                if session is not None:
                    session.bytes_in += len(data)
                self.on_bytes(data)
        except SessionEnd as end:
            await self.end(end)

    def on_text(self, text: str) -> None:
        raise NotImplementedError

    def on_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    async def close_for(self, end: SessionEnd) -> None:
        raise NotImplementedError

    async def end(self, end: SessionEnd) -> None:
        """End the session (its main task closes the socket), or close now if none."""
        if self.session is not None:
            self.session.end(end)
            return
        if not self._closed:
            self._closed = True
            await self.close_for(end)

    def count_close(self, code: int) -> None:
        """Count this socket's close once: the code sent, or the client's if it closed first."""
        if not self._close_counted:
            self._close_counted = True
            metrics.CLOSES.labels(self.path_name, str(int(code))).inc()

    def start_session(self, spec: SessionSpec) -> None:
        self._cancel_watchdog()
        # Log lines of this connection carry its ids; the session adds the conversation id
        # for its own tasks once it exists (assistant/live/session.py `run`).
        logs.bind(user=spec.user_id, client=spec.client_kind, conversation=spec.conversation_id)
        self.downlink = Downlink(self._transmit)
        self.session = LiveSession(spec, self, self.downlink)
        self._main = asyncio.create_task(self._run())

    async def _run(self) -> None:
        session = self.session
        assert session is not None
        end = await session.run()
        await self._leave_groups()
        if not self._closed:
            self._closed = True
            try:
                await self.close_for(end)
            except Exception:  # the socket may be gone already
                logger.debug("close after session end failed", exc_info=True)

    async def _wait_main(self) -> None:
        if self._main is not None:
            await asyncio.wait({self._main})
        elif self.session is not None:
            await self.session.close()

    async def _transmit(self, payload: bytes | str) -> None:
        if type(payload) is bytes:
            await self.base_send({"type": "websocket.send", "bytes": payload})
        else:
            await self.base_send({"type": "websocket.send", "text": payload})

    def watch(self, seconds: float, kind: EndKind) -> None:
        """End the connection unless a session starts within `seconds`."""

        async def expire() -> None:
            await asyncio.sleep(seconds)
            if self.session is None:
                await self.end(SessionEnd(kind))

        self._watchdog = asyncio.create_task(expire())

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

    async def disconnect(self, code):
        self._closed = True
        self.count_close(code if isinstance(code, int) else 1006)
        self._cancel_watchdog()
        if self._watchdog is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.session is not None:
            self.session.end(SessionEnd(EndKind.CLIENT_GONE))
            await self._wait_main()
        await self._leave_groups()

    # --- channel layer: control events --------------------------------------------------

    async def join_groups(self, session: LiveSession) -> None:
        # Kept even if the layer is down now: `_rejoin` adds them once it is back.
        self._groups = [
            control.user_group(session.spec.user_id),
            control.conversation_group(session.conversation_id),
        ]
        try:
            await self._rejoin()
        except Exception:
            logger.warning(
                "conv=%s channel layer unavailable: this session cannot be ended remotely "
                "until it is back",
                session.conversation_id,
                exc_info=True,
            )

    async def _rejoin(self) -> None:
        for group in self._groups:
            await self.channel_layer.group_add(group, self.channel_name)

    # Channels reads `self.channel_receive` once per message; a layer error (Redis down or
    # restarted) would end the whole connection through `await_many_dispatch`. The live
    # session must not depend on Redis: wait it out, then rejoin the groups (a restarted
    # Redis has forgotten them) and listen again.
    @property
    def channel_receive(self):
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        async def resilient():
            delay = 0.25
            while True:
                try:
                    message = await receive()
                except Exception:
                    if not self._layer_down:
                        self._layer_down = True
                        metrics.ERRORS.labels("channel_layer").inc()
                        logger.warning(
                            "channel layer unavailable: control events paused", exc_info=True
                        )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 4.0)
                    try:
                        await self._rejoin()
                    except Exception:
                        logger.debug("channel layer still unavailable", exc_info=True)
                        continue
                    self._layer_down = False
                    delay = 0.25
                    logger.info("channel layer back: control events resumed")
                    continue
                return message

        self._channel_receive = resilient

    async def _leave_groups(self) -> None:
        groups, self._groups = self._groups, []
        for group in groups:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)

    async def live_end(self, event):
        """`live.end` from staff, `manage.py end_session` or logout (assistant/control.py)."""
        await self.end(SessionEnd(EndKind.ENDED, str(event.get("reason") or "")))

    async def live_superseded(self, event):
        """The conversation was resumed by another socket (maybe on another worker)."""
        await self.end(SessionEnd(EndKind.SUPERSEDED))

    async def conversation_events(self, event):
        """Recorder broadcasts are for admin watchers (assistant/live_view.py), who listen on
        their own group; a live session ignores one should it ever get it."""

    # --- sink defaults ----------------------------------------------------------------------

    async def started(self, session: LiveSession) -> None:
        await self.join_groups(session)

    def ready(self, session: LiveSession) -> None:
        pass

    def state(self, state: str) -> None:
        pass

    def tool_activity(self, **event) -> None:
        pass

    def turn_finished(self, summary: TurnSummary) -> None:
        pass


class LiveConsumer(_BridgeConsumer):
    """The web UI's socket: session-cookie auth (AuthMiddlewareStack) and Origin check
    (AllowedHostsOriginValidator) in routing; binary PCM16 both ways, JSON for the rest."""

    path_name = "web"

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            self.count_close(bp.CloseCode.UNAUTHENTICATED)
            await self.close(code=bp.CloseCode.UNAUTHENTICATED)  # before accept: no upstream
            return
        self.user = user
        await self.accept()
        self.watch(bp.START_TIMEOUT_SECONDS, EndKind.START_TIMEOUT)

    async def close_for(self, end: SessionEnd) -> None:
        if end.kind is EndKind.CLIENT_GONE:
            return
        code = bp.web_close_code(end)
        self.count_close(code)
        if code != bp.CloseCode.NORMAL:
            await self.send(text_data=bp.error_event(code, end.message))
        await self.close(code=int(code), reason=p.close_reason(end.message))

    # --- browser → server ---------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        if self.session is not None:
            self.session.push_pcm(data)

    def on_text(self, text: str) -> None:
        message = bp.parse_message(text)
        kind = message["type"]
        session = self.session
        if kind == "start":
            if session is not None:
                raise bp.bad("`start` was already sent.")
            metrics.CONTROL_IN.inc()
            self._start(bp.read_start(message))
            return
        if session is None:
            raise bp.bad(f"Send `start` before `{kind}`.")
        if kind == "video":
            session.push_video(*bp.read_video(message))
            return
        metrics.CONTROL_IN.inc()
        session.limiter.check_control(len(text))
        if kind == "text":
            session.text(bp.read_text(message))
        elif kind == "mic.stopped":
            session.audio_stream_end()
        elif kind == "tool.result":
            session.tool_response([bp.read_tool_result(message)])
        elif kind == "ping":
            self.downlink.put(bp.event("pong"))
        elif kind == "stop":
            raise SessionEnd(EndKind.NORMAL)

    def _start(self, options: dict) -> None:
        model = _resolve_model(options["model"])
        if model is None:
            raise SessionEnd(
                EndKind.MODEL_NOT_ALLOWED,
                f"The model {options['model'][:60]} is not available on this server.",
            )
        voice = options["voice"] or settings.PASTRA_VOICE
        text_only = options["modality"] == "text"
        generation: dict = {"responseModalities": ["TEXT" if text_only else "AUDIO"]}
        if not text_only:
            generation["speechConfig"] = {
                "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}
            }
        body: dict = {"model": model, "generationConfig": generation}
        if options["persona"].strip():
            body["systemInstruction"] = {"parts": [{"text": options["persona"].strip()}]}
        if options["functions"]:
            body["tools"] = [{"functionDeclarations": p.normalize(options["functions"])}]
        setup = p.ClientSetup(
            model=model,
            body=body,
            wants_input_transcription=True,
            wants_output_transcription=True,
            text_only=text_only,
        )
        self.start_session(
            SessionSpec(
                user_id=self.user.pk,
                client_kind=Conversation.ClientKind.WEB,
                setup=setup,
                model=model,
                voice=voice,
                conversation_id=options["conversation"] or None,
            )
        )

    # --- sink: core → browser -------------------------------------------------------------

    def _session_event(self, state: str) -> None:
        session = self.session
        self.downlink.put(
            bp.event(
                "session",
                state=state,
                conversation=str(session.conversation_id),
                resumed=session.resumed,
                model=session.spec.model,
                voice=session.spec.voice,
                emulator=bool(settings.PASTRA_UPSTREAM_IS_EMULATOR),
            )
        )

    async def started(self, session: LiveSession) -> None:
        await self.join_groups(session)
        self._session_event("connecting")

    def ready(self, session: LiveSession) -> None:
        self._session_event("ready")

    def state(self, state: str) -> None:
        self._session_event(state)

    def tool_activity(self, **event) -> None:
        if "args" in event:
            event["args"] = bp.short_args(event["args"])
        self.downlink.put(bp.event("tool", **event))

    def server_message(self, view: p.ServerView) -> None:
        put, event = self.downlink.put, bp.event
        if view.audio and not self.session.emulate_text:
            for data in view.audio:
                self.downlink.put_audio(p.b64decode(data))
        if view.input_text:
            put(event("transcript", role="user", text=view.input_text, final=False))
        if view.output_text:
            put(event("transcript", role="model", text=view.output_text, final=False))
        for text in view.texts:
            put(event("transcript", role="model", text=text, final=False, source="text"))
        for kind, first, second in view.code:
            if kind == "code":
                put(event("code", language=first, code=second))
            else:
                put(event("code.result", outcome=first, output=second))
        if view.grounding is not None:
            put(event("grounding", **p.grounding_summary(view.grounding)))
        for call in view.client_calls:
            put(event("tool.call", id=call.get("id"), name=call.get("name"), args=call.get("args")))
        for call_id in view.client_cancelled:
            put(event("tool", phase="cancelled", id=call_id, executor="client"))
        if view.interrupted:
            put(event("interrupted"))
        if view.usage is not None:
            prompt, response, total = p.usage_counts(view.usage)
            put(event("usage", prompt_tokens=prompt, response_tokens=response, total_tokens=total))

    def turn_finished(self, summary: TurnSummary) -> None:
        put, event = self.downlink.put, bp.event
        if summary.user:
            put(event("transcript", role="user", text=summary.user, final=True))
        if summary.model:
            put(event("transcript", role="model", text=summary.model, final=True))
        put(event("turn.complete", turn=summary.turn, interrupted=summary.interrupted))


class GeminiConsumer(_BridgeConsumer):
    """Gemini-compatible socket: a personal access token in `key` or `x-goog-api-key`, the
    Gemini Live wire protocol both ways, Google-like close codes. Never shows the client
    Google's goAway, reconnects, server-executed tool calls, or Google's handles."""

    path_name = "sdk"

    async def connect(self):
        self.user = None
        self._refusal: tuple[int, str] | None = None
        self.version = self.scope.get("url_route", {}).get("kwargs", {}).get("version", "v1beta")
        token = self._token()
        if token:
            self.user = await aauthenticate(raw=token)
        # Like Google: the upgrade succeeds and the key is judged when the first message
        # arrives (closing at once would break the SDK's own setup send with a reset).
        await self.accept()
        if self.user is None:
            self._refusal = (
                (p.INVALID_ARGUMENT, p.REASON_BAD_KEY)
                if token
                else (p.POLICY, p.close_reason(p.REASON_NO_KEY))
            )
        self.watch(SETUP_TIMEOUT_SECONDS, EndKind.START_TIMEOUT)

    def _token(self) -> str:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if key := (query.get("key") or [""])[0]:
            return key.strip()
        for name, value in self.scope.get("headers", []):
            if name == b"x-goog-api-key":
                return value.decode("latin-1").strip()
        return ""

    async def close_for(self, end: SessionEnd) -> None:
        if end.kind is EndKind.CLIENT_GONE:
            return
        code, reason = self._refusal or p.gemini_close(end, version=self.version)
        self.count_close(code)
        await self.close(code=code, reason=reason)

    # --- client → server ----------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        self._on_message(data)

    def on_text(self, text: str) -> None:
        self._on_message(text)

    def _on_message(self, data: str | bytes) -> None:
        if self._refusal is not None:
            raise SessionEnd(EndKind.BAD_MESSAGE)  # closes with the refusal
        size = len(data)
        if size > MAX_MESSAGE_BYTES:
            raise SessionEnd(
                EndKind.TOO_LARGE,
                f"Request payload size exceeds the limit: {MAX_MESSAGE_BYTES} bytes.",
            )
        kind, body = p.parse_client(data)
        session = self.session
        if kind == "realtimeInput" and session is not None:
            for piece in p.realtime_parts(p.normalize(body)):
                if type(piece) is p.Media:
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
                    session.push_control(p.dumps({"realtimeInput": {name: value}}))
                    if name == "activityEnd":  # manual activity detection: the turn ends
                        session.user_turn_ended()
            return
        if size > MAX_CONTENT_BYTES:
            raise SessionEnd(
                EndKind.TOO_LARGE,
                f"Request payload size exceeds the limit: {MAX_CONTENT_BYTES} bytes.",
            )
        metrics.CONTROL_IN.inc()
        if kind == "setup":
            if session is not None:
                raise p.invalid()
            self._setup(body)
            return
        if session is None:  # anything before setup
            raise p.invalid()
        session.limiter.check_control(size, limit=MAX_CONTENT_BYTES)
        body = p.normalize(body)
        if kind == "clientContent":
            session.client_content(body)
        elif kind == "toolResponse":
            session.tool_response(body.get("functionResponses") or [])
        elif kind == "contextUpdate":
            session.context_update(body)

    def _setup(self, body: dict) -> None:
        client = p.read_client_setup(body)
        requested = client.model.removeprefix("models/")
        model = _resolve_model(requested)
        if model is None:
            raise SessionEnd(
                EndKind.MODEL_NOT_ALLOWED, p.reason_model_not_allowed(requested, self.version)
            )
        conversation_id = None
        if client.resume_handle:
            conversation_id = handles.read(client.resume_handle, user_id=self.user.pk)
            if conversation_id is None:
                raise SessionEnd(EndKind.NOT_FOUND)
        speech = (client.body.get("generationConfig") or {}).get("speechConfig") or {}
        voice = ((speech.get("voiceConfig") or {}).get("prebuiltVoiceConfig") or {}).get(
            "voiceName"
        )
        self.start_session(
            SessionSpec(
                user_id=self.user.pk,
                client_kind=Conversation.ClientKind.SDK,
                setup=client,
                model=model,
                voice=voice if isinstance(voice, str) else "",
                conversation_id=conversation_id,
                api_version=self.version,
            )
        )

    # --- sink: core → Gemini client -----------------------------------------------------

    def ready(self, session: LiveSession) -> None:
        self.downlink.put(b'{"setupComplete":{}}')

    def server_message(self, view: p.ServerView) -> None:
        session = self.session
        setup = session.spec.setup
        msg = view.msg
        changed = False
        if "sessionResumptionUpdate" in msg:
            if not setup.wants_resumption:
                del msg["sessionResumptionUpdate"]
                changed = True
            elif view.resumption:  # Google's handle stays here; the client gets Pastra's
                msg["sessionResumptionUpdate"] = {
                    "newHandle": session.client_handle,
                    "resumable": True,
                }
                changed = True
        if view.calls and len(view.client_calls) != len(view.calls):
            if view.client_calls:  # server-executed calls are none of the client's business
                msg["toolCall"] = {"functionCalls": view.client_calls}
            else:
                del msg["toolCall"]
            changed = True
        if view.cancelled and len(view.client_cancelled) != len(view.cancelled):
            if view.client_cancelled:
                msg["toolCallCancellation"] = {"ids": view.client_cancelled}
            else:
                del msg["toolCallCancellation"]
            changed = True
        content = view.content
        if content is not None:
            changed |= self._filter_content(view, content, setup)
            if not content:
                del msg["serverContent"]
        audio = bool(view.audio) and not session.emulate_text
        if not changed:
            if audio and len(msg) == 1 and len(content) == 1:
                self.downlink.put_audio(view.raw)  # pure audio: may be dropped under pressure
            else:
                self.downlink.put(view.raw, has_audio=audio)
        elif msg:
            self.downlink.put(p.dumps(msg), has_audio=audio)

    def _filter_content(self, view: p.ServerView, content: dict, setup: p.ClientSetup) -> bool:
        changed = False
        if not setup.wants_input_transcription and "inputTranscription" in content:
            del content["inputTranscription"]
            changed = True
        if self.session.emulate_text:
            # The client asked for TEXT from an audio-only model: it gets the transcript
            # as text parts, and no audio.
            if "modelTurn" in content:
                turn = content["modelTurn"]
                parts = [part for part in turn.get("parts") or () if "inlineData" not in part]
                if view.output_text:
                    parts.append({"text": view.output_text})
                if parts:
                    content["modelTurn"] = {**turn, "parts": parts}
                else:
                    del content["modelTurn"]
                changed = True
            elif view.output_text:
                content["modelTurn"] = {"role": "model", "parts": [{"text": view.output_text}]}
                changed = True
        if not setup.wants_output_transcription and "outputTranscription" in content:
            del content["outputTranscription"]
            changed = True
        return changed
