"""The model table: which Live models exist and how their behaviour differs."""

from __future__ import annotations

from dataclasses import dataclass

# Tool kinds a setup may declare (camelCase names of the Tool fields).
FUNCTIONS = "functionDeclarations"
GOOGLE_SEARCH = "googleSearch"
CODE_EXECUTION = "codeExecution"
URL_CONTEXT = "urlContext"


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts and how it shapes its replies."""

    name: str
    # "2.5": one field per serverContent message; "3": modelTurn and outputTranscription
    # bundled in one message.
    style: str
    modalities: frozenset[str]
    tools: frozenset[str]
    # "nonblocking-default": functions without `behavior` are NON_BLOCKING (3.8);
    # "optional": BLOCKING unless declared NON_BLOCKING (2.5); "sync-only": always BLOCKING (3.1).
    function_calling: str
    # Legacy `realtimeInput.mediaChunks` still accepted.
    media_chunks: bool
    # `clientContent` needs `historyConfig.initialHistoryInClientContent` (3.1 launch docs).
    client_content_needs_history_config: bool = False
    # `proactivity`: "supported", "unsupported" (setting it fails) or "always" (false fails).
    proactivity: str = "unsupported"
    affective_dialog: bool = False
    # `generationConfig.thinkingConfig` accepted (2.5: thinkingBudget; 3.1: thinkingLevel).
    thinking_config: bool = True
    # `realtimeInputConfig.turnCoverage` when unset or TURN_COVERAGE_UNSPECIFIED.
    turn_coverage: str = "TURN_INCLUDES_ONLY_ACTIVITY"
    # The newest server signals: `interactionStatus` with every `turnComplete`,
    # `interimInputTranscription` while the user speaks, `voiceActivity` messages.
    live_signals: bool = False
    # `thought: true` text parts before each reply (the extended-thinking variant).
    thoughts: bool = False

    @property
    def bundled(self) -> bool:
        return self.style == "3"


AUDIO_ONLY = frozenset({"AUDIO"})

# gemini-3.8-live: the model page and its migration notes (ai.google.dev, Sept 2026): code
# execution "Not supported", URL context not supported, search grounding and function calling
# supported (NON_BLOCKING by default), proactive audio always on (false is an error),
# `thinkingConfig` not supported ("omit it"), affective dialog removed, turn coverage
# defaults to TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO.
_GEMINI_38_TOOLS = frozenset({FUNCTIONS, GOOGLE_SEARCH})
ALL_VIDEO = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"
# The signals google-genai 3.6.1 types.py parses (LiveServerContent.interaction_status,
# .interim_input_transcription, LiveServerMessage.voice_activity); the emulator sends them
# from the current model only (3.8 migration notes, Sept 2026: "sent with turnComplete").
_GEMINI_38 = {
    "style": "3",
    "modalities": AUDIO_ONLY,
    "tools": _GEMINI_38_TOOLS,
    "function_calling": "nonblocking-default",
    "media_chunks": False,
    "proactivity": "always",
    "thinking_config": False,
    "turn_coverage": ALL_VIDEO,
    "live_signals": True,
}

_MODELS = [
    ModelSpec(name="gemini-3.8-live", **_GEMINI_38),
    # The extended-thinking variant (same page) reasons before it answers: thought parts.
    ModelSpec(name="gemini-3.8-live-extended-thinking", thoughts=True, **_GEMINI_38),
    # gemini-3.1-flash-live-preview model page (ai.google.dev, Mar 2026): thinkingLevel,
    # sync-only functions, turn coverage default TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO.
    ModelSpec(
        name="gemini-3.1-flash-live-preview",
        style="3",
        modalities=AUDIO_ONLY,
        tools=frozenset({FUNCTIONS, GOOGLE_SEARCH}),
        function_calling="sync-only",
        media_chunks=False,
        client_content_needs_history_config=True,
        turn_coverage=ALL_VIDEO,
    ),
    # 2.5 native audio (Live API capabilities guide, ai.google.dev, 2025): thinkingBudget,
    # proactive audio and affective dialog; turn coverage default TURN_INCLUDES_ONLY_ACTIVITY
    # (google-genai 3.6.1 types.py, TurnCoverage).
    *(
        ModelSpec(
            name=name,
            style="2.5",
            modalities=AUDIO_ONLY,
            tools=frozenset({FUNCTIONS, GOOGLE_SEARCH}),
            function_calling="optional",
            media_chunks=True,
            proactivity="supported",
            affective_dialog=True,
        )
        for name in (
            "gemini-2.5-flash-native-audio-preview-12-2025",
            "gemini-2.5-flash-native-audio-preview-09-2025",
            "gemini-2.5-flash-native-audio-latest",
        )
    ),
    # Emulator-only: a half-cascade model that still allows TEXT, so text replies can be
    # tested now that Google has shut down every TEXT-capable Live model.
    ModelSpec(
        name="gemini-live-text-test",
        style="2.5",
        modalities=frozenset({"AUDIO", "TEXT"}),
        tools=frozenset({FUNCTIONS, GOOGLE_SEARCH, CODE_EXECUTION, URL_CONTEXT}),
        function_calling="optional",
        media_chunks=True,
    ),
]

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _MODELS}


def model_lookup(name: str) -> ModelSpec | None:
    """The spec for `models/NAME` or `NAME`; None when the model does not exist."""
    return MODELS.get(name.removeprefix("models/"))
