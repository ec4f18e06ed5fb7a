"""The setup policy: what a client asked for (a Gemini setup, or the web UI's `start`) and
what Pastra sends upstream under the deployment's rules (allowed models, base instruction,
server and Google-run tools per model, transcription, resumption, context compression)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini.client import check_content, check_tools, content_text
from assistant.live.gemini.errors import invalid
from assistant.live.gemini.models import (
    CODE_EXECUTION,
    FUNCTIONS,
    GOOGLE_SEARCH,
    URL_CONTEXT,
    capabilities,
)
from assistant.live.gemini.wire import normalize


@dataclass(frozen=True)
class ClientSetup:
    """What a client asked for (normalised), before the server's policy applies."""

    model: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    wants_input_transcription: bool = False
    wants_output_transcription: bool = False
    wants_resumption: bool = False
    resume_handle: str = ""  # Pastra's handle (Gemini path)
    text_only: bool = False  # asked for TEXT replies

    def voice(self) -> str:
        """The prebuilt voice the client asked for, or ""."""
        value: Any = self.body
        for name in ("generationConfig", "speechConfig", "voiceConfig", "prebuiltVoiceConfig"):
            value = value.get(name) if isinstance(value, dict) else None
        voice = value.get("voiceName") if isinstance(value, dict) else None
        return voice if isinstance(voice, str) else ""


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
    speech = generation.get("speechConfig")
    for name in ("voiceConfig", "prebuiltVoiceConfig"):  # the voice is read from these
        if speech is not None and not isinstance(speech, dict):
            raise invalid()
        speech = speech.get(name) if speech is not None else None
    if speech is not None and not isinstance(speech, dict):
        raise invalid()
    instruction = body.get("systemInstruction")
    if isinstance(instruction, str):  # SDK-style bare string: on the wire it is a Content
        body["systemInstruction"] = {"parts": [{"text": instruction}]}
    elif instruction is not None:
        check_content(instruction)
    resumption = body.get("sessionResumption")
    if resumption is not None and not isinstance(resumption, dict):
        raise invalid()
    handle = (resumption or {}).get("handle") or ""
    if not isinstance(handle, str):
        raise invalid()
    check_tools(body.get("tools"))
    return ClientSetup(
        model=model.strip(),
        body=body,
        wants_input_transcription=body.get("inputAudioTranscription") is not None,
        wants_output_transcription=body.get("outputAudioTranscription") is not None,
        wants_resumption=resumption is not None,
        resume_handle=handle,
        text_only=modalities == ["TEXT"],
    )


def web_setup(
    *,
    model: str,
    voice: str,
    text_only: bool,
    persona: str,
    functions: list[dict],
    language: str = "",
    media_resolution: str = "",
    manual_activity: bool = False,
) -> ClientSetup:
    """The setup the web UI's `start` options stand for (both transcriptions always on).
    `manual_activity` (push-to-talk) turns the model's voice detection off: the page brackets
    speech with activityStart/activityEnd (Live API reference, BidiGenerateContentSetup
    `realtimeInputConfig.automaticActivityDetection.disabled`; gemini-live-protocol.md §2.3,
    compiled 2026-11: "only when automaticActivityDetection.disabled: true").
    `language` (a BCP-47 code) becomes speechConfig.languageCode, "" leaves it to the model;
    `media_resolution` (MEDIA_RESOLUTION_LOW/MEDIUM/HIGH) what a video frame costs, "" unset."""
    generation: dict[str, Any] = {"responseModalities": ["TEXT" if text_only else "AUDIO"]}
    if not text_only:
        speech: dict[str, Any] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
        if language:
            speech["languageCode"] = language
        generation["speechConfig"] = speech
    if media_resolution:
        generation["mediaResolution"] = media_resolution
    body: dict[str, Any] = {"model": model, "generationConfig": generation}
    if persona.strip():
        body["systemInstruction"] = {"parts": [{"text": persona.strip()}]}
    if functions:
        body["tools"] = [{"functionDeclarations": normalize(functions)}]
    if manual_activity:
        body["realtimeInputConfig"] = {"automaticActivityDetection": {"disabled": True}}
    return ClientSetup(
        model=model,
        body=body,
        wants_input_transcription=True,
        wants_output_transcription=True,
        text_only=text_only,
    )


def manual_activity(setup: ClientSetup) -> bool:
    """The client brackets speech itself (automatic activity detection disabled)."""
    config = setup.body.get("realtimeInputConfig")
    detection = config.get("automaticActivityDetection") if isinstance(config, dict) else None
    return isinstance(detection, dict) and detection.get("disabled") is True


# Models on which clientContent is only for seeding the history (it needs
# historyConfig.initialHistoryInClientContent, else 1007): gemini-3.1-flash-live-preview's
# launch docs (gemini-live-protocol.md §2.2, compiled 2026-11, [DOC S9]). On the others
# clientContent is usable all session and "will interrupt any current model generation".
CLIENT_CONTENT_SEED_ONLY = frozenset({"gemini-3.1-flash-live-preview"})


def resolve_model(requested: str, *, default: str, aliases: dict, allowed: list) -> str | None:
    """The model to use (without `models/`), or None if this server does not allow it."""
    name = (requested or default).strip().removeprefix("models/")
    name = aliases.get(name, name)
    return name if name in allowed else None


def emulate_text(setup: ClientSetup, model: str) -> bool:
    """The client asked for TEXT from an audio-only model: AUDIO goes upstream and the client
    gets the output transcript as text."""
    return setup.text_only and capabilities(model).audio_only


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
        for d in tool.get(FUNCTIONS) or ()
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    }


# What the person sees when Pastra had to leave out a Google-run tool it adds for everyone.
BUILTIN_NAMES = {
    GOOGLE_SEARCH: "Google Search",
    CODE_EXECUTION: "code execution",
    URL_CONTEXT: "URL context",
}


@dataclass(frozen=True)
class Tools:
    """The tools of one upstream setup, as the deployment's policy decided them."""

    declared: list[dict[str, Any]]  # for upstream
    client_functions: set[str]  # functions the client declared (the client answers them)
    added: frozenset[str] = frozenset()  # Google-run tools Pastra added, the client did not ask

    def without_added(self) -> Tools:
        """The same tools without the Google-run ones Pastra added (the upstream refused)."""
        declared = [tool for tool in self.declared if not (tool.keys() & self.added)]
        return Tools(declared, self.client_functions)


def _unavailable(kind: str, why: str) -> SessionEnd:
    return SessionEnd(EndKind.TOOL_NOT_AVAILABLE, f"{kind} {why}")


def merge_tools(
    server_tools: list[dict[str, Any]], client_tools: list[Any], *, model: str
) -> Tools:
    """The tools for upstream: the server's functions, then the client's (a client function
    with a server function's name is dropped: the server runs it), then the Google-run tools.

    Google-run tools (codeExecution, googleSearch, urlContext, …): the deployment's own
    (`server_tools`, from its toggles) are added where the model supports them; one the client
    asks for is forwarded where the deployment offers it and the model supports it, and
    otherwise refused (SessionEnd naming the tool), never dropped in silence. What each model
    supports is the capability table's (models.py, with its sources).
    """
    caps = capabilities(model)
    supported = caps.tools
    server_names = function_names(server_tools)
    # The server's functions are declared with the behaviour that suits them on this model.
    declarations = [
        {**d, "behavior": caps.server_function_behavior}
        for tool in server_tools
        for d in tool.get(FUNCTIONS) or ()
        if d
    ]
    offered = {kind: value for tool in server_tools for kind, value in tool.items()}
    offered.pop(FUNCTIONS, None)
    client_names: set[str] = set()
    requested: dict[str, Any] = {}
    for tool in client_tools or ():
        if not isinstance(tool, dict):
            raise invalid()
        for kind, value in tool.items():
            if kind == FUNCTIONS:
                for declaration in value or ():
                    if not isinstance(declaration, dict) or not isinstance(
                        declaration.get("name"), str
                    ):
                        raise invalid()
                    name = declaration["name"]
                    if name not in server_names and name not in client_names:
                        client_names.add(name)
                        declarations.append(declaration)
            elif value is not None:
                if kind not in offered:
                    raise _unavailable(kind, "is not enabled on this Pastra server.")
                if kind not in supported:
                    raise _unavailable(
                        kind,
                        f"is not supported by models/{model}: Operation is not implemented, "
                        "or supported, or enabled.",
                    )
                requested[kind] = value
    merged: list[dict[str, Any]] = [{FUNCTIONS: declarations}] if declarations else []
    added = set()
    for kind, value in offered.items():
        if kind in requested:
            merged.append({kind: requested[kind]})
        elif kind in supported:
            merged.append({kind: value})
            added.add(kind)
    return Tools(merged, client_names, frozenset(added))


def _refused(what: str, model: str) -> SessionEnd:
    # Short enough for the longest field and model name: a close reason is cut at 123 bytes.
    return invalid(f"Invalid argument: {what} is not supported by models/{model}.")


def check_fields(client: ClientSetup, *, model: str) -> None:
    """Refuse, before any upstream, a setup field or voice the model refuses (the capability
    table's, with its sources), as Google does: 1007 invalid argument, here naming the field.
    A model the table does not know is not checked."""
    caps = capabilities(model)
    generation = client.body.get("generationConfig") or {}
    for name in sorted(caps.refused_setup_fields):
        if generation.get(name) is not None:
            raise _refused(f"generationConfig.{name}", model)
        if client.body.get(name) is not None:
            raise _refused(name, model)
    proactivity = client.body.get("proactivity")
    always_on = caps.proactive_audio_always and isinstance(proactivity, dict)
    if always_on and proactivity.get("proactiveAudio") is False:
        raise _refused("proactivity.proactiveAudio false", model)
    voice = client.voice()
    if voice and caps.voices and voice.lower() not in caps.voices:
        raise _refused(f"voice {voice[:40]}", model)


def context_update(
    body: dict[str, Any], *, base_instruction: str, server: list[dict[str, Any]], model: str
) -> tuple[dict[str, Any], set[str] | None]:
    """A (normalised) contextUpdate under the setup's policy: the base instruction first,
    server tools kept. Returns it and, when it replaces the tools, the client's functions."""
    update = dict(body)
    if "systemInstruction" in update:
        update["systemInstruction"] = merge_instruction(
            base_instruction, update["systemInstruction"]
        ) or {"parts": []}
    names = None
    if isinstance(update.get("tools"), dict):
        tools = merge_tools(server, update["tools"].get("tools") or [], model=model)
        names = tools.client_functions
        update["tools"] = {"tools": tools.declared}
    return update, names


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
