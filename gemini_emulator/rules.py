"""Per-model setup rules beyond the schema: thinking, affective dialog, proactivity, voices,
media resolution and turn coverage. Each raises `ProtocolError` with the real service's code.

Bad values close 1007 like the proto3 JSON mapper does (`Invalid value at '…' (…Enum), "X"`);
a field the model does not take closes 1007 `Request contains an invalid argument.`
"""

from __future__ import annotations

from typing import Any

from . import protocol as p
from .models import ModelSpec

# The 30 prebuilt voices of the native-audio models (the same set as Gemini TTS; Live API
# "voices" list, ai.google.dev, 2025-2026; protocol doc section 6.2). Names are matched
# case-insensitively: "aoede" worked against the real service [OBS]. The emulator's text
# test model keeps the same list.
VOICES = frozenset(
    name.lower()
    for name in [
        "Zephyr",
        "Puck",
        "Charon",
        "Kore",
        "Fenrir",
        "Leda",
        "Orus",
        "Aoede",
        "Callirrhoe",
        "Autonoe",
        "Enceladus",
        "Iapetus",
        "Umbriel",
        "Algieba",
        "Despina",
        "Erinome",
        "Algenib",
        "Rasalgethi",
        "Laomedeia",
        "Achernar",
        "Alnilam",
        "Schedar",
        "Gacrux",
        "Pulcherrima",
        "Achird",
        "Zubenelgenubi",
        "Vindemiatrix",
        "Sadachbia",
        "Sadaltager",
        "Sulafat",
    ]
)

# Tokens per video frame by `mediaResolution`. google-genai 3.6.1 types.py MediaResolution:
# LOW "64 tokens", MEDIUM "256 tokens", HIGH "zoomed reframing with 256 tokens"; unset or
# UNSPECIFIED: 258 per image/frame (Gemini API "Video understanding" and "Image
# understanding" pages, ai.google.dev, 2025: "258 tokens per frame").
MEDIA_TOKENS = {
    "MEDIA_RESOLUTION_UNSPECIFIED": 258,
    "MEDIA_RESOLUTION_LOW": 64,
    "MEDIA_RESOLUTION_MEDIUM": 256,
    "MEDIA_RESOLUTION_HIGH": 256,
}
_MEDIA_ENUM = list(MEDIA_TOKENS)

ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"
ALL_INPUT = "TURN_INCLUDES_ALL_INPUT"
AUDIO_ACTIVITY_ALL_VIDEO = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"
_COVERAGE_ENUM = ["TURN_COVERAGE_UNSPECIFIED", ONLY_ACTIVITY, ALL_INPUT, AUDIO_ACTIVITY_ALL_VIDEO]

_PROTO = "type.googleapis.com/google.ai.generativelanguage.v1beta"


def check_generation(generation: dict[str, Any], spec: ModelSpec) -> None:
    """Fields of `generationConfig` that depend on the model."""
    # gemini-3.8-live migration notes (ai.google.dev, Sept 2026): thinkingConfig / thinking
    # level "not supported, omit it"; 2.5 native audio (thinkingBudget) and 3.1
    # (thinkingLevel) accept it.
    if generation.get("thinkingConfig") is not None and not spec.thinking_config:
        raise p.invalid_argument()
    # enableAffectiveDialog: 2.5 native audio only; not in 3.1; removed from the Gemini API
    # on 3.8 (same notes). Refused when present at all, true or false.
    if generation.get("enableAffectiveDialog") is not None and not spec.affective_dialog:
        raise p.invalid_argument()
    speech = generation.get("speechConfig") or {}
    voice = ((speech.get("voiceConfig") or {}).get("prebuiltVoiceConfig") or {}).get("voiceName")
    if voice is not None and (not isinstance(voice, str) or voice.lower() not in VOICES):
        raise p.invalid_argument()


def check_proactivity(proactivity: Any, spec: ModelSpec) -> None:
    """`proactivity`: 2.5 native audio only; always on in 3.8 (false is an error)."""
    if proactivity is None:
        return
    if spec.proactivity == "unsupported":
        raise p.invalid_argument()
    if spec.proactivity == "always" and proactivity.get("proactiveAudio") is False:
        raise p.invalid_argument()


def media_tokens(generation: dict[str, Any]) -> int:
    """Tokens one video frame costs under `generationConfig.mediaResolution`."""
    value = _enum(
        generation.get("mediaResolution"),
        _MEDIA_ENUM,
        "setup.generation_config.media_resolution",
        f"{_PROTO}.GenerationConfig.MediaResolution",
    )
    return MEDIA_TOKENS[value or "MEDIA_RESOLUTION_UNSPECIFIED"]


def turn_coverage(config: dict[str, Any], spec: ModelSpec) -> str:
    """`realtimeInputConfig.turnCoverage`, the model's default when unset or UNSPECIFIED."""
    value = _enum(
        config.get("turnCoverage"),
        _COVERAGE_ENUM,
        "setup.realtime_input_config.turn_coverage",
        f"{_PROTO}.RealtimeInputConfig.TurnCoverage",
    )
    if value in (None, "TURN_COVERAGE_UNSPECIFIED"):
        return spec.turn_coverage
    return value


def _enum(value: Any, names: list[str], path: str, proto: str) -> str | None:
    """A proto3 JSON enum: its name, or its number; anything else closes 1007."""
    if value is None:
        return None
    if isinstance(value, str) and value in names:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    raise p.ProtocolError(p.INVALID_ARGUMENT, p.reason_invalid_value(path, proto, value))
