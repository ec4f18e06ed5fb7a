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

    @property
    def bundled(self) -> bool:
        return self.style == "3"


AUDIO_ONLY = frozenset({"AUDIO"})

# gemini-3.8-live: the model page and its migration notes (ai.google.dev, Sept 2026): code
# execution "Not supported", URL context not supported, search grounding and function calling
# supported (NON_BLOCKING by default), proactive audio always on.
_GEMINI_38_TOOLS = frozenset({FUNCTIONS, GOOGLE_SEARCH})

_MODELS = [
    ModelSpec(
        name="gemini-3.8-live",
        style="3",
        modalities=AUDIO_ONLY,
        tools=_GEMINI_38_TOOLS,
        function_calling="nonblocking-default",
        media_chunks=False,
        proactivity="always",
    ),
    ModelSpec(
        name="gemini-3.8-live-extended-thinking",
        style="3",
        modalities=AUDIO_ONLY,
        tools=_GEMINI_38_TOOLS,
        function_calling="nonblocking-default",
        media_chunks=False,
        proactivity="always",
    ),
    ModelSpec(
        name="gemini-3.1-flash-live-preview",
        style="3",
        modalities=AUDIO_ONLY,
        tools=frozenset({FUNCTIONS, GOOGLE_SEARCH}),
        function_calling="sync-only",
        media_chunks=False,
        client_content_needs_history_config=True,
    ),
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
