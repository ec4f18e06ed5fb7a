"""Gemini Live wire format: client-message normalising and legacy translation, setup policy,
server-message parsing into a typed view, base64 helpers, Gemini close codes and reasons.

The real server reads client JSON with the proto3 JSON mapper (camelCase and snake_case at
every level except free-form Struct payloads). Pastra normalises what clients send to
camelCase once, at the edge, and always sends camelCase upstream.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from assistant.live.errors import EndKind, SessionEnd

loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


# --- Gemini close codes and reasons (protocol doc section 5.5) ------------------------------

NORMAL = 1000
GOING_AWAY = 1001
INVALID_ARGUMENT = 1007
POLICY = 1008
TOO_BIG = 1009
INTERNAL = 1011
SERVICE_RESTART = 1012

REASON_INVALID_ARGUMENT = "Request contains an invalid argument."
REASON_BAD_JSON = "Invalid JSON payload received. Unexpected token."
REASON_BAD_KEY = "API key not valid. Please pass a valid API key."
REASON_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
REASON_SESSION_NOT_FOUND = "BidiGenerateContent session not found"
REASON_UNAVAILABLE = "The service is currently unavailable."
REASON_INTERNAL = "Internal error encountered."


def reason_unknown_field(name: str, path: str = "") -> str:
    where = f" at '{path}'" if path else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'


def reason_model_not_allowed(model: str, version: str) -> str:
    return (
        f"models/{model} is not found for API version {version}, or is not allowed on this "
        "Pastra server."
    )


def close_reason(text: str) -> str:
    """Cut a reason to the 123 bytes a close frame can carry."""
    data = text.encode()
    return text if len(data) <= 123 else data[:123].decode(errors="ignore")


def invalid(reason: str = REASON_INVALID_ARGUMENT) -> SessionEnd:
    return SessionEnd(EndKind.BAD_MESSAGE, reason)


# --- camelCase normalising --------------------------------------------------------------

# Free-form payloads: their keys are data (argument names, schema properties), not fields.
STRUCT_FIELDS = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseJsonSchema",
        "responseSchema",
        "labels",
        "safetySettings",
    }
)
_CAMEL: dict[str, str] = {}


def camel(name: str) -> str:
    cached = _CAMEL.get(name)
    if cached is None:
        if "_" in name:
            head, *rest = name.split("_")
            cached = head + "".join(word[:1].upper() + word[1:] for word in rest)
        else:
            cached = name
        if len(_CAMEL) < 4096:  # bounded: keys come from clients
            _CAMEL[name] = cached
    return cached


def normalize(value: Any) -> Any:
    """camelCase every key at every level, except inside Struct payloads. Both spellings of
    one field in one object is an invalid argument (as upstream would say)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise invalid()
            name = camel(key)
            if name in out:
                raise invalid()
            out[name] = item if name in STRUCT_FIELDS else normalize(item)
        return out
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


# --- base64 -------------------------------------------------------------------------------

_URLSAFE = str.maketrans("-_", "+/")


def b64decode(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not. Raises ValueError."""
    if "-" in data or "_" in data:
        data = data.translate(_URLSAFE)
    if missing := -len(data) % 4:
        data += "=" * missing
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc


def b64encode(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False)


def b64_size(data: str) -> int:
    """Decoded size of a base64 string, without decoding it."""
    size = len(data)
    if size and data[-1] == "=":
        size -= 2 if size > 1 and data[-2] == "=" else 1
    return size * 3 // 4


# --- client → upstream messages -----------------------------------------------------------

CLIENT_KINDS = frozenset(
    {"setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate"}
)
REALTIME_FIELDS = frozenset(
    {"audio", "video", "text", "audioStreamEnd", "activityStart", "activityEnd", "mediaChunks"}
)
AUDIO_MIME = "audio/pcm;rate=16000"
_RATE = re.compile(r"rate=(\d+)")

# Uplink item kinds.
AUDIO, VIDEO, CONTROL = "audio", "video", "control"


def parse_client(data: str | bytes) -> tuple[str, dict[str, Any]]:
    """(kind, body) of a client message; body not yet normalised. Raises SessionEnd."""
    try:
        message = loads(data)
    except JSONDecodeError:
        raise invalid(REASON_BAD_JSON) from None
    if not isinstance(message, dict) or len(message) != 1:
        raise invalid()
    ((key, body),) = message.items()
    kind = camel(key)
    if kind not in CLIENT_KINDS:
        raise invalid(reason_unknown_field(key))
    if not isinstance(body, dict):
        raise invalid()
    return kind, body


def audio_message(b64: bytes | str, mime: str = AUDIO_MIME) -> bytes:
    if isinstance(b64, str):
        b64 = b64.encode()
    head = b'{"realtimeInput":{"audio":{"mimeType":"' + mime.encode() + b'","data":"'
    return head + b64 + b'"}}}'


def video_message(b64: str, mime: str) -> bytes:
    return dumps({"realtimeInput": {"video": {"mimeType": mime, "data": b64}}})


def text_message(text: str) -> bytes:
    return dumps({"realtimeInput": {"text": text}})


AUDIO_STREAM_END = b'{"realtimeInput":{"audioStreamEnd":true}}'


def audio_ms(size: int, mime: str) -> float:
    """Milliseconds of PCM16 mono in `size` bytes at the MIME's rate (16 kHz by default)."""
    rate = 16000
    if mime != AUDIO_MIME and (match := _RATE.search(mime)):
        rate = max(8000, min(48000, int(match.group(1))))
    return size * 500.0 / rate


@dataclass(frozen=True, slots=True)
class Media:
    kind: str  # AUDIO | VIDEO
    mime: str
    data: str  # base64 as the client sent it (passed through untouched)

    @property
    def size(self) -> int:
        return b64_size(self.data)


def _blob(value: Any) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise invalid()
    data, mime = value.get("data"), value.get("mimeType") or ""
    if not isinstance(data, str) or not isinstance(mime, str):
        raise invalid()
    return mime, data


def _audio_mime(mime: str) -> str:
    # The tutorial sends bare "audio/pcm"; Gemini assumes 16 kHz then, say so explicitly.
    if not mime or mime == "audio/pcm":
        return AUDIO_MIME
    return mime


def realtime_parts(body: dict[str, Any]) -> list[Media | tuple[str, Any]]:
    """Split one (normalised) realtimeInput into ordered pieces: Media for audio/video, and
    ("text", str) / ("audioStreamEnd", True) / ("activityStart", {}) / ("activityEnd", {}).
    Legacy `mediaChunks` become audio or video by MIME type."""
    pieces: list[Media | tuple[str, Any]] = []
    for name in body:
        if name not in REALTIME_FIELDS:
            raise invalid(reason_unknown_field(name, "realtime_input"))
    if body.get("activityStart") is not None:
        pieces.append(("activityStart", {}))
    for chunk in body.get("mediaChunks") or ():
        mime, data = _blob(chunk)
        if mime.startswith(("image/", "video/")):
            pieces.append(Media(VIDEO, mime, data))
        else:
            pieces.append(Media(AUDIO, _audio_mime(mime), data))
    if (audio := body.get("audio")) is not None:
        mime, data = _blob(audio)
        pieces.append(Media(AUDIO, _audio_mime(mime), data))
    if (video := body.get("video")) is not None:
        mime, data = _blob(video)
        pieces.append(Media(VIDEO, mime or "image/jpeg", data))
    if (text := body.get("text")) is not None:
        if not isinstance(text, str):
            raise invalid()
        pieces.append(("text", text))
    if body.get("audioStreamEnd"):
        pieces.append(("audioStreamEnd", True))
    if body.get("activityEnd") is not None:
        pieces.append(("activityEnd", {}))
    return pieces


def content_text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "".join(
        part["text"]
        for part in content.get("parts") or ()
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def _text_only(content: dict[str, Any]) -> bool:
    parts = content.get("parts") or []
    return bool(parts) and all(isinstance(p, dict) and set(p) == {"text"} for p in parts)


def translate_client_content(body: dict[str, Any], *, model: str) -> tuple[str, Any]:
    """What to do with a (normalised) clientContent, as ("drop", None) | ("audioStreamEnd",
    None) | ("text", str) | ("clientContent", body).

    - The tutorial's "continue signal" (one empty user turn, turnComplete false) is dropped.
    - Its "end of turn" (one empty user turn, turnComplete true) is `audioStreamEnd`.
    - For 3.x models, a single text-only user turn with turnComplete true becomes
      `realtimeInput.text` (the recommended way; 3.x may refuse clientContent mid-session).
    - Anything else (history, several turns, no turns) passes through.
    """
    turns = body.get("turns")
    if turns is not None and not isinstance(turns, list):
        raise invalid()
    turns = turns or []
    complete = bool(body.get("turnComplete"))
    if len(turns) == 1 and isinstance(turns[0], dict):
        turn = turns[0]
        role = turn.get("role") or "user"
        if role == "user" and not (turn.get("parts") or []):
            return ("audioStreamEnd", None) if complete else ("drop", None)
        if role == "user" and complete and _text_only(turn) and model.startswith("gemini-3"):
            return "text", content_text(turn)
    return "clientContent", body


def user_texts(body: dict[str, Any]) -> list[str]:
    """Text of the user turns in a clientContent (for the recorder)."""
    return [
        text
        for turn in body.get("turns") or ()
        if isinstance(turn, dict) and (turn.get("role") or "user") == "user"
        if (text := content_text(turn).strip())
    ]


# --- setup policy -------------------------------------------------------------------------


@dataclass
class ClientSetup:
    """What a client asked for (normalised), before the server's policy applies."""

    model: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    wants_input_transcription: bool = False
    wants_output_transcription: bool = False
    wants_resumption: bool = False
    resume_handle: str = ""  # Pastra's handle (Gemini path)
    text_only: bool = False  # asked for TEXT replies


def read_client_setup(raw: dict[str, Any]) -> ClientSetup:
    """Normalise a Gemini-path setup body and apply legacy fixes. Raises SessionEnd."""
    body = normalize(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid()
    generation = body.get("generationConfig")
    if generation is not None and not isinstance(generation, dict):
        raise invalid()
    generation = dict(generation or {})
    modalities = generation.get("responseModalities")
    if isinstance(modalities, str):
        modalities = [modalities]
    if modalities is not None:
        if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
            raise invalid()
        modalities = [m.upper() for m in modalities]  # the tutorial sends "audio"
        generation["responseModalities"] = modalities
    body["generationConfig"] = generation
    instruction = body.get("systemInstruction")
    if isinstance(instruction, str):  # SDK-style bare string: on the wire it is a Content
        body["systemInstruction"] = {"parts": [{"text": instruction}]}
    elif instruction is not None and not isinstance(instruction, dict):
        raise invalid()
    resumption = body.get("sessionResumption")
    if resumption is not None and not isinstance(resumption, dict):
        raise invalid()
    handle = (resumption or {}).get("handle") or ""
    if not isinstance(handle, str):
        raise invalid()
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid()
    return ClientSetup(
        model=model.strip(),
        body=body,
        wants_input_transcription=body.get("inputAudioTranscription") is not None,
        wants_output_transcription=body.get("outputAudioTranscription") is not None,
        wants_resumption=resumption is not None,
        resume_handle=handle,
        text_only=modalities == ["TEXT"],
    )


def resolve_model(requested: str, *, default: str, aliases: dict, allowed: list) -> str | None:
    """The model to use (without `models/`), or None if this server does not allow it."""
    name = (requested or default).strip().removeprefix("models/")
    name = aliases.get(name, name)
    return name if name in allowed else None


def audio_only(model: str) -> bool:
    """Native-audio and 3.x Live models refuse TEXT replies ("Cannot extract voices…")."""
    return model.startswith("gemini-3") or "native-audio" in model


def merge_instruction(base: str, client: Any) -> dict[str, Any] | None:
    client_text = content_text(client).strip() if isinstance(client, dict) else ""
    text = "\n\n".join(t for t in (base.strip(), client_text) if t)
    if not text:
        return None
    content: dict[str, Any] = {"parts": [{"text": text}]}
    if isinstance(client, dict) and isinstance(client.get("role"), str):
        content["role"] = client["role"]
    return content


def function_names(tools: list[dict[str, Any]]) -> set[str]:
    return {
        d["name"]
        for tool in tools
        for d in tool.get("functionDeclarations") or ()
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    }


def merge_tools(
    server_tools: list[dict[str, Any]], client_tools: list[Any]
) -> tuple[list[dict[str, Any]], set[str]]:
    """(tools for upstream, names of client-declared functions).

    Server functions win over a client function of the same name (the server executes it).
    Google-executed tools (codeExecution, googleSearch, …) follow the deployment's
    toggles only: a client's own requests for them are not forwarded.
    """
    server_names = function_names(server_tools)
    declarations = [d for tool in server_tools for d in tool.get("functionDeclarations") or () if d]
    client_names: set[str] = set()
    for tool in client_tools or ():
        if not isinstance(tool, dict):
            raise invalid()
        for declaration in tool.get("functionDeclarations") or ():
            if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str):
                raise invalid()
            name = declaration["name"]
            if name in server_names or name in client_names:
                continue
            client_names.add(name)
            declarations.append(declaration)
    merged: list[dict[str, Any]] = []
    if declarations:
        merged.append({"functionDeclarations": declarations})
    for tool in server_tools:
        rest = {k: v for k, v in tool.items() if k != "functionDeclarations"}
        if rest:
            merged.append(rest)
    return merged, client_names


def build_setup(
    client: ClientSetup,
    *,
    model: str,
    base_instruction: str,
    tools: list[dict[str, Any]],
    handle: str | None,
    emulate_text: bool,
) -> dict[str, Any]:
    """The setup Pastra sends upstream: the client's choices under the server's policy.
    Transcription and resumption are always on; context compression keeps sessions going
    past the 15/2-minute caps."""
    setup = {
        k: v
        for k, v in client.body.items()
        if k not in ("model", "systemInstruction", "tools", "sessionResumption")
    }
    setup["model"] = f"models/{model}"
    generation = dict(setup.get("generationConfig") or {})
    if emulate_text:
        generation["responseModalities"] = ["AUDIO"]
    if generation:
        setup["generationConfig"] = generation
    else:
        setup.pop("generationConfig", None)
    instruction = merge_instruction(base_instruction, client.body.get("systemInstruction"))
    if instruction:
        setup["systemInstruction"] = instruction
    if tools:
        setup["tools"] = tools
    setup.setdefault("inputAudioTranscription", {})
    setup.setdefault("outputAudioTranscription", {})
    setup["sessionResumption"] = {"handle": handle} if handle else {}
    setup.setdefault("contextWindowCompression", {"slidingWindow": {}})
    return {"setup": setup}


# --- upstream → client messages -----------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_duration(value: Any) -> float:
    """A protobuf Duration in JSON ("50s", "1.500s") in seconds; 0 when unreadable."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else 0.0


class ServerView:
    """One upstream message, read once: what the core and the adapters need to know.

    `msg` is the parsed JSON (adapters may edit it before re-encoding); `raw` the bytes as
    received (forwarded untouched when nothing changes).
    """

    __slots__ = (
        "audio",
        "calls",
        "cancelled",
        "client_calls",
        "client_cancelled",
        "code",
        "content",
        "generation_complete",
        "go_away",
        "grounding",
        "input_text",
        "interrupted",
        "msg",
        "output_text",
        "raw",
        "resumable",
        "resumption",
        "setup_complete",
        "texts",
        "turn_complete",
        "usage",
    )

    def __init__(self, raw: bytes | str, msg: dict[str, Any]) -> None:
        self.raw = raw
        self.msg = msg
        self.setup_complete = "setupComplete" in msg
        self.content: dict[str, Any] | None = None
        self.audio: list[str] = []
        self.texts: list[str] = []
        self.code: list[tuple[str, str, str]] = []  # ("code", language, code) | ("result", …)
        self.input_text = ""
        self.output_text = ""
        self.interrupted = False
        self.generation_complete = False
        self.turn_complete = False
        self.grounding: dict[str, Any] | None = None
        self.calls: list[dict[str, Any]] = []
        self.client_calls: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.client_cancelled: list[str] = []
        self.go_away: float | None = None
        self.resumption: str | None = None  # new handle when resumable
        self.resumable = False
        self.usage: dict[str, Any] | None = None


def parse_server(raw: bytes | str) -> ServerView:
    """Raises ValueError for anything that is not a JSON object."""
    msg = loads(raw)
    if not isinstance(msg, dict):
        raise ValueError("not an object")
    view = ServerView(raw, msg)
    content = msg.get("serverContent")
    if isinstance(content, dict):
        view.content = content
        turn = content.get("modelTurn")
        if isinstance(turn, dict):
            for part in turn.get("parts") or ():
                if not isinstance(part, dict):
                    continue
                if (blob := part.get("inlineData")) is not None:
                    if str(blob.get("mimeType", "audio")).startswith("audio") and isinstance(
                        blob.get("data"), str
                    ):
                        view.audio.append(blob["data"])
                elif (text := part.get("text")) is not None:
                    if not part.get("thought") and isinstance(text, str):
                        view.texts.append(text)
                elif (code := part.get("executableCode")) is not None:
                    view.code.append(
                        ("code", str(code.get("language", "")), str(code.get("code", "")))
                    )
                elif (result := part.get("codeExecutionResult")) is not None:
                    view.code.append(
                        ("result", str(result.get("outcome", "")), str(result.get("output", "")))
                    )
        if isinstance(tx := content.get("inputTranscription"), dict):
            view.input_text = str(tx.get("text") or "")
        if isinstance(tx := content.get("outputTranscription"), dict):
            view.output_text = str(tx.get("text") or "")
        view.interrupted = bool(content.get("interrupted"))
        view.generation_complete = bool(content.get("generationComplete"))
        view.turn_complete = bool(content.get("turnComplete"))
        if isinstance(grounding := content.get("groundingMetadata"), dict):
            view.grounding = grounding
    if isinstance(call := msg.get("toolCall"), dict):
        view.calls = [c for c in call.get("functionCalls") or () if isinstance(c, dict)]
    if isinstance(cancel := msg.get("toolCallCancellation"), dict):
        view.cancelled = [str(i) for i in cancel.get("ids") or ()]
    if isinstance(go_away := msg.get("goAway"), dict):
        view.go_away = parse_duration(go_away.get("timeLeft"))
    if isinstance(update := msg.get("sessionResumptionUpdate"), dict):
        view.resumable = bool(update.get("resumable"))
        handle = update.get("newHandle")
        if view.resumable and isinstance(handle, str) and handle:
            view.resumption = handle
    if isinstance(usage := msg.get("usageMetadata"), dict):
        view.usage = usage
    return view


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


# --- end → Gemini close ---------------------------------------------------------------------


def gemini_close(end: SessionEnd, *, version: str = "v1beta") -> tuple[int, str]:
    """Close code and reason for a Gemini-path client (Google-like where Google has one)."""
    kind = end.kind
    if kind is EndKind.UPSTREAM_REJECTED and end.upstream_code:
        return end.upstream_code, close_reason(end.upstream_reason or end.message)
    code, reason = {
        EndKind.NORMAL: (NORMAL, ""),
        EndKind.CLIENT_GONE: (NORMAL, ""),
        EndKind.UPSTREAM_ENDED: (NORMAL, end.message),
        EndKind.SHUTDOWN: (SERVICE_RESTART, end.message),
        EndKind.BAD_MESSAGE: (INVALID_ARGUMENT, end.message),
        EndKind.TOO_LARGE: (TOO_BIG, end.message),
        EndKind.NOT_FOUND: (POLICY, REASON_SESSION_NOT_FOUND),
        EndKind.UPSTREAM_UNAVAILABLE: (INTERNAL, REASON_UNAVAILABLE),
        EndKind.UPSTREAM_REJECTED: (INTERNAL, end.message),
        EndKind.INTERNAL: (INTERNAL, REASON_INTERNAL),
    }.get(kind, (POLICY, end.message))
    return code, close_reason(reason)
