"""The handshake: judge the API key or token and turn the `setup` message into a SessionSetup.

Everything here raises `ProtocolError` (close code and Google's reason) on a bad request and
sends nothing; the session does the I/O, the admission check and `setupComplete`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from . import protocol as p
from .models import CODE_EXECUTION, FUNCTIONS, GOOGLE_SEARCH, URL_CONTEXT, ModelSpec, model_lookup
from .resumption import HandleStore, SessionState
from .rules import check_generation, check_proactivity, media_tokens, turn_coverage
from .scripts import ToolSet
from .tokens import TOKEN_PREFIX, AuthToken, TokenStore, apply, credential
from .vad import DEFAULT_PREFIX_MS, DEFAULT_SILENCE_MS, PREFIX_MS, SILENCE_MS

if TYPE_CHECKING:
    from websockets.http11 import Request

_BEHAVIORS = (None, "UNSPECIFIED", "BLOCKING", "NON_BLOCKING")


@dataclass(eq=False)
class SessionSetup:
    """What an accepted setup decided. `tools` and `system_instruction` may be replaced
    later by `contextUpdate`; the rest holds for the whole connection."""

    model: ModelSpec
    state: SessionState
    modality: str = "AUDIO"
    tools: ToolSet = field(default_factory=ToolSet)
    system_instruction: Any = None
    input_transcription: bool = False
    output_transcription: bool = False
    resumable: bool = False
    history_config: bool = False
    manual_vad: bool = False
    interrupts: bool = True
    prefix_ms: int = DEFAULT_PREFIX_MS
    silence_ms: int = DEFAULT_SILENCE_MS
    media_tokens: int = 258  # per video frame, by mediaResolution
    turn_coverage: str = "TURN_INCLUDES_ONLY_ACTIVITY"
    token: AuthToken | None = None  # the ephemeral token of a Constrained session


def authenticate(request: Request | None, expected: str) -> None:
    """Find the key (query, header, token) and judge it against `expected` (empty: any key)."""
    query = parse_qs(request.path.partition("?")[2]) if request else {}
    headers = request.headers if request else {}
    key = (
        (query.get("key") or [""])[0]
        or headers.get("x-goog-api-key", "")
        or (query.get("access_token") or [""])[0]
    )
    if not key:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("token", "bearer"):
            key = credential.strip()
    if not key:
        raise p.ProtocolError(p.POLICY, p.REASON_NO_KEY)
    # An ephemeral token is not an API key: on the plain endpoint it is refused like a bad
    # key, as Google did when tokens came as ?key= / x-goog-api-key [OBS protocol doc 1.2].
    if key.startswith(TOKEN_PREFIX) or (
        expected and not hmac.compare_digest(key.encode(), expected.encode())
    ):
        raise p.ProtocolError(p.INVALID_ARGUMENT, p.REASON_BAD_KEY)


def read_setup(
    raw: str | bytes,
    request: Request | None,
    api_key: str,
    version: str,
    tokens: TokenStore | None = None,
) -> tuple[ModelSpec, dict[str, Any], AuthToken | None]:
    """The first client message: key (or, with `tokens`, the Constrained endpoint's token),
    then a `setup` naming a known model → (model, effective setup body, token)."""
    # Like Google, the upgrade succeeds and the key is judged with the first message;
    # closing before it would make the SDK fail in send() instead of reporting the close.
    token = None
    if tokens is None:
        authenticate(request, api_key)
    else:
        name = credential(request)
        if name is None:  # no token (an API key is not enough here) [OBS protocol doc 1.2]
            raise p.ProtocolError(p.POLICY, p.REASON_NO_KEY)
    kind, body = p.parse_message(raw)
    if kind != "setup":
        raise p.invalid_argument()
    if tokens is not None:
        resuming = bool((body.get("sessionResumption") or {}).get("handle"))
        token = tokens.judge(name, resuming=resuming)
        body = apply(token, body)
    model_name = body.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise p.invalid_argument()
    spec = model_lookup(model_name)
    if spec is None:
        raise p.ProtocolError(p.POLICY, p.reason_model_not_found(model_name, version))
    return spec, body, token


def configure(spec: ModelSpec, body: dict[str, Any], store: HandleStore) -> SessionSetup:
    """Validate the rest of the setup against the model; attach new or resumed state."""
    generation = body.get("generationConfig") or {}
    modality = _modality(generation, spec)
    check_generation(generation, spec)
    check_proactivity(body.get("proactivity"), spec)
    tools = load_tools(body.get("tools") or [], spec)
    system_instruction = body.get("systemInstruction")
    realtime = body.get("realtimeInputConfig") or {}
    manual_vad, interrupts, prefix_ms, silence_ms = _realtime(realtime)
    history_config = body.get("historyConfig") or {}
    resumption = body.get("sessionResumption")
    return SessionSetup(
        model=spec,
        modality=modality,
        tools=tools,
        system_instruction=system_instruction,
        manual_vad=manual_vad,
        interrupts=interrupts,
        prefix_ms=prefix_ms,
        silence_ms=silence_ms,
        media_tokens=media_tokens(generation),
        turn_coverage=turn_coverage(realtime, spec),
        input_transcription=body.get("inputAudioTranscription") is not None,
        output_transcription=body.get("outputAudioTranscription") is not None,
        history_config=bool(history_config.get("initialHistoryInClientContent")),
        resumable=resumption is not None,
        state=_attach_state(store, (resumption or {}).get("handle"), spec),
    )


def load_tools(tools: list[dict[str, Any]], spec: ModelSpec) -> ToolSet:
    """The declared tools (setup or contextUpdate), checked against what the model offers."""
    toolset = ToolSet()
    for tool in tools:
        for kind, value in tool.items():
            if value is None:
                continue
            if kind not in spec.tools:
                raise p.ProtocolError(p.POLICY, p.REASON_NOT_SUPPORTED)
            if kind == FUNCTIONS:
                for declaration in value:
                    name = declaration.get("name")
                    if not isinstance(name, str) or not name or name in toolset.functions:
                        raise p.invalid_argument()
                    if declaration.get("behavior") not in _BEHAVIORS:
                        raise p.invalid_argument()
                    toolset.functions[name] = declaration
            elif kind == GOOGLE_SEARCH:
                toolset.google_search = True
            elif kind == CODE_EXECUTION:
                toolset.code_execution = True
            elif kind == URL_CONTEXT:
                toolset.url_context = True
    return toolset


def _modality(generation: dict[str, Any], spec: ModelSpec) -> str:
    modalities = generation.get("responseModalities") or ["AUDIO"]
    if not isinstance(modalities, list) or len(modalities) != 1:
        raise p.invalid_argument()
    modality = str(modalities[0]).upper()
    if modality not in ("AUDIO", "TEXT"):
        raise p.invalid_argument()
    if modality not in spec.modalities:
        raise p.ProtocolError(p.INVALID_ARGUMENT, p.REASON_NO_VOICES)
    return modality


def _realtime(config: dict[str, Any]) -> tuple[bool, bool, int, int]:
    """(manual VAD, barge-in interrupts, prefix ms, silence ms) from realtimeInputConfig."""
    detection = config.get("automaticActivityDetection") or {}
    manual_vad = bool(detection.get("disabled"))
    interrupts = config.get("activityHandling") != "NO_INTERRUPTION"
    if manual_vad:
        return manual_vad, interrupts, DEFAULT_PREFIX_MS, DEFAULT_SILENCE_MS
    prefix = _int_or(
        detection.get("prefixPaddingMs"),
        PREFIX_MS.get(detection.get("startOfSpeechSensitivity"), DEFAULT_PREFIX_MS),
    )
    silence = _int_or(
        detection.get("silenceDurationMs"),
        SILENCE_MS.get(detection.get("endOfSpeechSensitivity"), DEFAULT_SILENCE_MS),
    )
    return manual_vad, interrupts, prefix, silence


def _attach_state(store: HandleStore, handle: Any, spec: ModelSpec) -> SessionState:
    if not handle:
        return store.new_session(spec.name)
    found = store.lookup(str(handle))
    if found is None:
        raise p.ProtocolError(p.POLICY, p.REASON_SESSION_NOT_FOUND)
    state, history = found
    if state.owner is not None:  # the old socket is still open
        raise p.ProtocolError(p.INTERNAL, p.REASON_INTERNAL)
    if state.model != spec.name:  # the model may not change on resumption
        raise p.invalid_argument()
    state.history = history
    state.ended_at = None
    return state


def _int_or(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise p.invalid_argument() from None
