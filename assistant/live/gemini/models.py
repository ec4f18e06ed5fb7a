"""The bridge's model capability table: which response modalities, tools and setup fields
each Live model accepts, each fact with the page (and date) it comes from. This is the
bridge's own reading of Google's pages, independent of gemini_emulator/models.py.

A model the table does not know (one a deployment allows before this table learns of it)
gets UNKNOWN: what the client asked for is passed on and Google decides.
"""

from __future__ import annotations

from dataclasses import dataclass

# Tool kinds (camelCase names of the Tool fields).
FUNCTIONS = "functionDeclarations"
GOOGLE_SEARCH = "googleSearch"
CODE_EXECUTION = "codeExecution"
URL_CONTEXT = "urlContext"

AUDIO, TEXT = "AUDIO", "TEXT"

# Sources (docs/gemini-live-protocol.md section 10 has the full keys).
PAGE_38 = (
    "ai.google.dev/gemini-api/docs/models/gemini-3.8-live and its migration notes, Sept 2026 "
    "(protocol doc, update 2026-12)"
)
PAGE_31 = (
    "ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview, Mar 2026 "
    "(protocol doc section 6.1 [DOC S9/S10])"
)
PAGE_25 = (
    "Live API guide, native-audio models, 2025 (protocol doc section 6.1 [DOC S7/S9]); TEXT "
    'refused with "Cannot extract voices from a non-audio request." [OBS cookbook#793]'
)
PAGE_VOICES = (
    "Live API guide, voices (ai.google.dev, 2025): native-audio models offer the 30 Gemini TTS "
    "voices (protocol doc section 6.2 [DOC S7]); names match case-insensitively [OBS]"
)
PAGE_TOOLS_38 = (
    "Live API tool use page, asynchronous function calling (ai.google.dev, Sept 2026): "
    "behavior NON_BLOCKING, FunctionResponse.scheduling SILENT / WHEN_IDLE / INTERRUPT"
)
PASTRA_CHOICE = (
    "Pastra's choice: realtimeInput.text is Google's recommended way to send text to 3.x "
    "models (3.1 page, Mar 2026, which allows clientContent only for initial history)"
)


@dataclass(frozen=True)
class Capabilities:
    """What one model accepts, as Google documents it."""

    name: str
    response_modalities: frozenset[str]
    tools: frozenset[str]
    # Setup fields (generationConfig.* or setup-level) the model refuses.
    refused_setup_fields: frozenset[str]
    # `proactivity.proactiveAudio: false` is refused (proactive audio is always on).
    proactive_audio_always: bool
    # Prebuilt voice names, lower case; empty: not checked.
    voices: frozenset[str]
    # How Pastra declares its own functions: NON_BLOCKING lets the model keep talking ("let
    # me check") while a call runs; its result then carries `scheduling`.
    server_function_behavior: str
    server_result_scheduling: str | None
    # A single text-only user turn (clientContent, turnComplete) is sent as realtimeInput.text.
    text_turns_as_realtime_input: bool
    sources: tuple[str, ...]

    @property
    def audio_only(self) -> bool:
        """TEXT replies are refused: a client asking for TEXT gets the output transcript."""
        return TEXT not in self.response_modalities


_AUDIO_ONLY = frozenset({AUDIO})

# The 30 prebuilt voices of the native-audio Live models (the Gemini TTS set).
VOICES = (
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe",
    "Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib",
    "Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima",
    "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)  # fmt: skip
_NATIVE_VOICES = frozenset(name.lower() for name in VOICES)

_GEMINI_38 = {
    "response_modalities": _AUDIO_ONLY,  # "AUDIO response modality only"
    "tools": frozenset({FUNCTIONS, GOOGLE_SEARCH}),  # code execution, URL context: not supported
    # thinkingConfig "not supported (omit it)"; enableAffectiveDialog removed.
    "refused_setup_fields": frozenset({"thinkingConfig", "enableAffectiveDialog"}),
    "proactive_audio_always": True,  # "proactive audio always on"; false is an error
    "voices": _NATIVE_VOICES,
    # Functions are NON_BLOCKING by default; WHEN_IDLE: the result is said once the model
    # has finished what it is saying, not over it.
    "server_function_behavior": "NON_BLOCKING",
    "server_result_scheduling": "WHEN_IDLE",
    "text_turns_as_realtime_input": True,
    "sources": (PAGE_38, PAGE_TOOLS_38, PAGE_VOICES, PASTRA_CHOICE),
}

_TABLE = [
    Capabilities(name="gemini-3.8-live", **_GEMINI_38),
    Capabilities(name="gemini-3.8-live-extended-thinking", **_GEMINI_38),
    Capabilities(
        name="gemini-3.1-flash-live-preview",
        response_modalities=_AUDIO_ONLY,
        tools=frozenset({FUNCTIONS, GOOGLE_SEARCH}),  # no code execution, no URL context
        refused_setup_fields=frozenset({"proactivity", "enableAffectiveDialog"}),
        proactive_audio_always=False,
        voices=_NATIVE_VOICES,
        server_function_behavior="BLOCKING",  # "synchronous function calling only"
        server_result_scheduling=None,
        text_turns_as_realtime_input=True,
        sources=(PAGE_31, PAGE_VOICES, PASTRA_CHOICE),
    ),
    *(
        Capabilities(
            name=name,
            response_modalities=_AUDIO_ONLY,
            tools=frozenset({FUNCTIONS, GOOGLE_SEARCH}),
            refused_setup_fields=frozenset(),
            proactive_audio_always=False,
            voices=_NATIVE_VOICES,
            # NON_BLOCKING is optional here; Pastra's lookups are quick and their answer is
            # the reply, so BLOCKING (the default) suits them.
            server_function_behavior="BLOCKING",
            server_result_scheduling=None,
            text_turns_as_realtime_input=False,
            sources=(PAGE_25, PAGE_VOICES),
        )
        for name in (
            "gemini-2.5-flash-native-audio-preview-12-2025",
            "gemini-2.5-flash-native-audio-preview-09-2025",
            "gemini-2.5-flash-native-audio-latest",
        )
    ),
]

MODELS: dict[str, Capabilities] = {caps.name: caps for caps in _TABLE}

UNKNOWN = Capabilities(
    name="",
    response_modalities=frozenset({AUDIO, TEXT}),
    tools=frozenset({FUNCTIONS, GOOGLE_SEARCH, CODE_EXECUTION, URL_CONTEXT}),
    refused_setup_fields=frozenset(),
    proactive_audio_always=False,
    voices=frozenset(),
    server_function_behavior="BLOCKING",  # works on every Live model
    server_result_scheduling=None,
    text_turns_as_realtime_input=False,
    sources=("not in this table: the client's request is passed on; Google decides",),
)


def capabilities(model: str) -> Capabilities:
    """The table's entry for `models/NAME` or `NAME`, or UNKNOWN."""
    return MODELS.get(model.removeprefix("models/"), UNKNOWN)
