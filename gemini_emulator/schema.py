"""Proto schemas of the client messages: each known field (camelCase) and what it holds.

`protocol.normalize_message` walks these tables; a name missing here is an unknown field.
Message names are the proto types quoted in Google's "Invalid value" close reasons.
Every field google-genai 3.6.1 can send in Gemini-API mode is here (its `_live_converters.py`
`_LiveConnectConfig_to_mldev`, `_Tool_to_mldev`, `_Part_to_mldev` and the pydantic types they
pass through unchanged; `tests/emulator/test_sdk_fields.py` walks them), so no valid SDK
setup is refused as unknown.
"""

from __future__ import annotations

from typing import Any

LEAF = None  # scalar, enum or bytes: value kept as is
STRUCT = "struct"  # free-form payload: kept untouched, keys and all


class Msg:
    """A proto message: known camelCase field names mapped to their schema."""

    __slots__ = ("fields", "proto")

    def __init__(self, proto: str, fields: dict[str, Any]) -> None:
        self.proto = proto
        self.fields = fields


class Rep:
    """A repeated field of `item`."""

    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item


def _p(name: str) -> str:
    return f"type.googleapis.com/google.ai.generativelanguage.v1beta.{name}"


BLOB = Msg(_p("Blob"), {"mimeType": LEAF, "data": LEAF, "displayName": LEAF})
FUNCTION_CALL = Msg(
    _p("FunctionCall"),
    {"id": LEAF, "name": LEAF, "args": STRUCT, "partialArgs": STRUCT, "willContinue": LEAF},
)
FUNCTION_RESPONSE = Msg(
    _p("FunctionResponse"),
    {
        "id": LEAF,
        "name": LEAF,
        "response": STRUCT,
        "parts": STRUCT,
        "willContinue": LEAF,
        "scheduling": LEAF,
    },
)
PART = Msg(
    _p("Part"),
    {
        "text": LEAF,
        "thought": LEAF,
        "thoughtSignature": LEAF,
        "inlineData": BLOB,
        "fileData": Msg(_p("FileData"), {"mimeType": LEAF, "fileUri": LEAF, "displayName": LEAF}),
        "functionCall": FUNCTION_CALL,
        "functionResponse": FUNCTION_RESPONSE,
        "executableCode": Msg(_p("ExecutableCode"), {"language": LEAF, "code": LEAF, "id": LEAF}),
        "codeExecutionResult": Msg(
            _p("CodeExecutionResult"), {"outcome": LEAF, "output": LEAF, "id": LEAF}
        ),
    }
    | dict.fromkeys(
        (
            "videoMetadata",
            "partMetadata",
            "mediaResolution",
            "toolCall",
            "toolResponse",
            "audioTranscription",
            "mediaProcessing",
            "speechMetadata",
            "documentMetadata",
            "spreadsheetMetadata",
            "audioMetadata",
        ),
        STRUCT,
    ),
)
CONTENT = Msg(_p("Content"), {"role": LEAF, "parts": Rep(PART)})
FUNCTION_DECLARATION = Msg(
    _p("FunctionDeclaration"),
    {
        "name": LEAF,
        "description": LEAF,
        "behavior": LEAF,
        "parameters": STRUCT,
        "parametersJsonSchema": STRUCT,
        "response": STRUCT,
        "responseJsonSchema": STRUCT,
    },
)
TOOL = Msg(
    _p("Tool"),
    {
        "functionDeclarations": Rep(FUNCTION_DECLARATION),
        "googleSearch": STRUCT,
        "googleSearchRetrieval": STRUCT,
        "codeExecution": STRUCT,
        "urlContext": STRUCT,
        "googleMaps": STRUCT,
        "computerUse": STRUCT,
        "fileSearch": STRUCT,
        "mcpServers": STRUCT,
    },
)
SPEECH_CONFIG = Msg(
    _p("SpeechConfig"),
    {
        "voiceConfig": Msg(
            _p("VoiceConfig"),
            {
                "prebuiltVoiceConfig": Msg(_p("PrebuiltVoiceConfig"), {"voiceName": LEAF}),
                "replicatedVoiceConfig": STRUCT,
                "voice": LEAF,
            },
        ),
        "languageCode": LEAF,
        "multiSpeakerVoiceConfig": STRUCT,
    },
)
GENERATION_CONFIG = Msg(
    _p("GenerationConfig"),
    dict.fromkeys(
        (
            "candidateCount",
            "maxOutputTokens",
            "temperature",
            "topP",
            "topK",
            "presencePenalty",
            "frequencyPenalty",
            "seed",
            "responseModalities",
            "mediaResolution",
            "enableAffectiveDialog",
            "stopSequences",
            "responseMimeType",
            "responseLogprobs",
            "logprobs",
            "audioTimestamp",
            "enableEnhancedCivicAnswers",
        ),
        LEAF,
    )
    | {
        "speechConfig": SPEECH_CONFIG,
        "thinkingConfig": STRUCT,
        "translationConfig": STRUCT,
        "responseSchema": STRUCT,
        "responseJsonSchema": STRUCT,
        "routingConfig": STRUCT,
        "imageConfig": STRUCT,
        "modelSelectionConfig": STRUCT,
        "responseFormat": STRUCT,
        "audioTranscriptionConfig": STRUCT,
    },
)
REALTIME_INPUT_CONFIG = Msg(
    _p("RealtimeInputConfig"),
    {
        "automaticActivityDetection": Msg(
            _p("AutomaticActivityDetection"),
            {
                "disabled": LEAF,
                "startOfSpeechSensitivity": LEAF,
                "endOfSpeechSensitivity": LEAF,
                "prefixPaddingMs": LEAF,
                "silenceDurationMs": LEAF,
            },
        ),
        "activityHandling": LEAF,
        "turnCoverage": LEAF,
        # google-genai 3.6.1 types.py RealtimeInputConfig (sent as is, snake_case).
        "interimTranscriptTimestampEnabled": LEAF,
    },
)
SETUP = Msg(
    _p("BidiGenerateContentSetup"),
    {
        "model": LEAF,
        "generationConfig": GENERATION_CONFIG,
        "systemInstruction": CONTENT,
        "tools": Rep(TOOL),
        "realtimeInputConfig": REALTIME_INPUT_CONFIG,
        "sessionResumption": Msg(_p("SessionResumptionConfig"), {"handle": LEAF}),
        "contextWindowCompression": Msg(
            _p("ContextWindowCompressionConfig"),
            {
                "triggerTokens": LEAF,
                "slidingWindow": Msg(_p("SlidingWindow"), {"targetTokens": LEAF}),
            },
        ),
        "inputAudioTranscription": STRUCT,
        "outputAudioTranscription": STRUCT,
        "proactivity": Msg(
            _p("ProactivityConfig"), {"proactiveAudio": LEAF, "proactiveVideo": LEAF}
        ),
        "historyConfig": Msg(_p("HistoryConfig"), {"initialHistoryInClientContent": LEAF}),
        "safetySettings": STRUCT,
        "avatarConfig": STRUCT,
        "labels": STRUCT,
    },
)
CLIENT_CONTENT = Msg(
    _p("BidiGenerateContentClientContent"), {"turns": Rep(CONTENT), "turnComplete": LEAF}
)
REALTIME_INPUT = Msg(
    _p("BidiGenerateContentRealtimeInput"),
    {
        "mediaChunks": Rep(BLOB),
        "audio": BLOB,
        "video": BLOB,
        "text": LEAF,
        "audioStreamEnd": LEAF,
        "activityStart": STRUCT,
        "activityEnd": STRUCT,
    },
)
TOOL_RESPONSE = Msg(
    _p("BidiGenerateContentToolResponse"), {"functionResponses": Rep(FUNCTION_RESPONSE)}
)
CONTEXT_UPDATE = Msg(
    _p("LiveClientContextUpdate"),
    {
        "systemInstruction": CONTENT,
        "tools": Msg(_p("LiveClientContextUpdateTools"), {"tools": Rep(TOOL)}),
    },
)
CLIENT_MESSAGE = Msg(
    _p("BidiGenerateContentClientMessage"),
    {
        "setup": SETUP,
        "clientContent": CLIENT_CONTENT,
        "realtimeInput": REALTIME_INPUT,
        "toolResponse": TOOL_RESPONSE,
        "contextUpdate": CONTEXT_UPDATE,
    },
)
