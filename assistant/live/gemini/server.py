"""Upstream → client messages: one Gemini server message read once into an immutable view
(what the session and the adapters need to know), plus the small readers of its parts."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, NamedTuple

from assistant.live.gemini.wire import loads

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_EMPTY: tuple = ()


def parse_duration(value: Any) -> float:
    """A protobuf Duration in JSON ("50s", "1.500s") in seconds; 0 when unreadable."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else 0.0


class ServerView(NamedTuple):
    """One upstream message, read once. Immutable: `msg` and `content` are read-only views of
    the parsed JSON (an adapter that changes a message builds a new dict); `raw` is the bytes
    as received (forwarded untouched when nothing changes)."""

    raw: bytes | str
    msg: MappingProxyType
    setup_complete: bool = False
    content: MappingProxyType | None = None
    audio: tuple[str, ...] = _EMPTY  # base64 model audio
    texts: tuple[str, ...] = _EMPTY  # text parts (not thoughts)
    code: tuple[tuple[str, str, str], ...] = _EMPTY  # ("code", language, code) | ("result", …)
    input_text: str = ""
    output_text: str = ""
    interrupted: bool = False
    generation_complete: bool = False
    turn_complete: bool = False
    grounding: dict[str, Any] | None = None
    calls: tuple[dict[str, Any], ...] = _EMPTY
    cancelled: tuple[str, ...] = _EMPTY
    go_away: float | None = None  # timeLeft in seconds
    resumption: str | None = None  # new handle when resumable
    resumable: bool = False
    usage: dict[str, Any] | None = None
    # Newer fields (google-genai 3.6 types; docs/gemini-live-protocol.md "Update 2026-12"):
    thinking: bool = False  # `thought: true` parts (never audio, text or a reply)
    interim_input: str | None = None  # interimInputTranscription: the user's line so far
    turn_reason: str = ""  # turnCompleteReason, without the UNSPECIFIED value
    waiting_for_input: bool = False  # the model waits for the user to go on
    interaction_status: str = ""  # IN_PROGRESS | IDLE, sent with turnComplete
    voice_activity: str = ""  # "start" | "end" (voiceActivity / voiceActivityDetectionSignal)


_VOICE_ACTIVITY = {
    "ACTIVITY_START": "start",
    "ACTIVITY_END": "end",
    "VAD_SIGNAL_TYPE_SOS": "start",
    "VAD_SIGNAL_TYPE_EOS": "end",
}


def _model_turn(turn: dict) -> tuple[list[str], list[str], list[tuple[str, str, str]], bool]:
    audio: list[str] = []
    texts: list[str] = []
    code: list[tuple[str, str, str]] = []
    thinking = False
    for part in turn.get("parts") or ():
        if not isinstance(part, dict):
            continue
        if part.get("thought"):  # the model's reasoning: a sign of work, never the reply
            thinking = True
        elif (blob := part.get("inlineData")) is not None:
            if str(blob.get("mimeType", "audio")).startswith("audio") and isinstance(
                blob.get("data"), str
            ):
                audio.append(blob["data"])
        elif (text := part.get("text")) is not None:
            if isinstance(text, str):
                texts.append(text)
        elif (executable := part.get("executableCode")) is not None:
            code.append(
                ("code", str(executable.get("language", "")), str(executable.get("code", "")))
            )
        elif (result := part.get("codeExecutionResult")) is not None:
            code.append(("result", str(result.get("outcome", "")), str(result.get("output", ""))))
    return audio, texts, code, thinking


def _voice_activity(msg: dict) -> str:
    """ "start"/"end" from a voiceActivity (or Vertex-style voiceActivityDetectionSignal)
    message, else "". On the wire voiceActivity's field is `type` (google-genai 3.6.1
    _VoiceActivity_from_mldev); the SDK's own name `voiceActivityType` is read too."""
    activity = msg.get("voiceActivity")
    if isinstance(activity, dict):
        kind = activity.get("type") or activity.get("voiceActivityType") or ""
        return _VOICE_ACTIVITY.get(str(kind).upper(), "")
    signal = msg.get("voiceActivityDetectionSignal")
    if isinstance(signal, dict):
        return _VOICE_ACTIVITY.get(str(signal.get("vadSignalType", "")).upper(), "")
    return ""


def parse_server(raw: bytes | str) -> ServerView:
    """Raises ValueError for anything that is not a JSON object."""
    msg = loads(raw)
    if not isinstance(msg, dict):
        raise ValueError("not an object")
    fields: dict[str, Any] = {}
    content = msg.get("serverContent")
    if isinstance(content, dict):
        fields["content"] = MappingProxyType(content)
        turn = content.get("modelTurn")
        if isinstance(turn, dict):
            audio, texts, code, thinking = _model_turn(turn)
            if thinking:
                fields["thinking"] = True
            if audio:
                fields["audio"] = tuple(audio)
            if texts:
                fields["texts"] = tuple(texts)
            if code:
                fields["code"] = tuple(code)
        if isinstance(tx := content.get("inputTranscription"), dict):
            fields["input_text"] = str(tx.get("text") or "")
        if isinstance(tx := content.get("outputTranscription"), dict):
            fields["output_text"] = str(tx.get("text") or "")
        if content.get("interrupted"):
            fields["interrupted"] = True
        if content.get("generationComplete"):
            fields["generation_complete"] = True
        if content.get("turnComplete"):
            fields["turn_complete"] = True
        if isinstance(grounding := content.get("groundingMetadata"), dict):
            fields["grounding"] = grounding
        if isinstance(tx := content.get("interimInputTranscription"), dict):
            fields["interim_input"] = str(tx.get("text") or "")
        reason = content.get("turnCompleteReason")
        if isinstance(reason, str) and reason and reason != "TURN_COMPLETE_REASON_UNSPECIFIED":
            fields["turn_reason"] = reason.upper()
        if content.get("waitingForInput"):
            fields["waiting_for_input"] = True
        status = content.get("interactionStatus")
        if isinstance(status, str) and status and status != "INTERACTION_STATUS_UNSPECIFIED":
            fields["interaction_status"] = status.upper()
    if "setupComplete" in msg:
        fields["setup_complete"] = True
    if isinstance(call := msg.get("toolCall"), dict):
        fields["calls"] = tuple(c for c in call.get("functionCalls") or () if isinstance(c, dict))
    if isinstance(cancel := msg.get("toolCallCancellation"), dict):
        fields["cancelled"] = tuple(str(i) for i in cancel.get("ids") or ())
    if isinstance(go_away := msg.get("goAway"), dict):
        fields["go_away"] = parse_duration(go_away.get("timeLeft"))
    if isinstance(update := msg.get("sessionResumptionUpdate"), dict):
        resumable = bool(update.get("resumable"))
        fields["resumable"] = resumable
        handle = update.get("newHandle")
        if resumable and isinstance(handle, str) and handle:
            fields["resumption"] = handle
    if isinstance(usage := msg.get("usageMetadata"), dict):
        fields["usage"] = usage
    if activity := _voice_activity(msg):
        fields["voice_activity"] = activity
    return ServerView(raw, MappingProxyType(msg), **fields)


def grounding_summary(grounding: dict[str, Any]) -> dict[str, Any]:
    sources = []
    for chunk in grounding.get("groundingChunks") or ():
        web = chunk.get("web") if isinstance(chunk, dict) else None
        if isinstance(web, dict):
            sources.append({"title": str(web.get("title", "")), "uri": str(web.get("uri", ""))})
    queries = [str(q) for q in grounding.get("webSearchQueries") or ()]
    return {"sources": sources, "queries": queries}


def usage_counts(usage: dict[str, Any]) -> tuple[int, int, int]:
    """(prompt, response, total) tokens; Vertex calls the response `candidates`."""

    def number(*names: str) -> int:
        for name in names:
            value = usage.get(name)
            if isinstance(value, int):
                return value
        return 0

    prompt = number("promptTokenCount")
    response = number("responseTokenCount", "candidatesTokenCount")
    total = number("totalTokenCount") or prompt + response
    return prompt, response, total
