"""The choices the web app's settings offer: persona presets (system-instruction additions),
the prebuilt voices, the reply languages and the camera quality (media resolution).

The deployment's own base instruction (PASTRA_SYSTEM_INSTRUCTION, or the file
PASTRA_SYSTEM_INSTRUCTION_FILE names) always comes first; a persona is appended to it by the
bridge, and the user's own standing instructions (User.standing_instructions) last
(`with_standing_instructions`). The browser's `start` is checked against these lists
(browser_protocol.read_start).
"""

from typing import Any

PERSONAS = [
    {"id": "default", "label": "Helpful assistant", "text": ""},
    {
        "id": "brief",
        "label": "Brief",
        "text": "Answer in one or two short sentences unless asked for more.",
    },
    {
        "id": "tutor",
        "label": "Patient tutor",
        "text": "You are a patient tutor. Explain step by step, check understanding, "
        "and encourage questions.",
    },
    {
        "id": "describer",
        "label": "Describes what it sees",
        "text": "When the camera or screen is shared, describe what you see clearly and "
        "concretely, as you would for someone who cannot see it.",
    },
]

# The 30 prebuilt voices of the native-audio Live models, each with the style Google gives it
# (docs/gemini-live-protocol.md section 6.2; Firebase AI Logic "Live API configuration",
# response voice options, 2026). The first eight are the older half-cascade models' set.
VOICE_STYLES = {
    "Puck": "Upbeat",
    "Charon": "Informative",
    "Kore": "Firm",
    "Fenrir": "Excitable",
    "Aoede": "Breezy",
    "Leda": "Youthful",
    "Orus": "Firm",
    "Zephyr": "Bright",
    "Achernar": "Soft",
    "Achird": "Friendly",
    "Algenib": "Gravelly",
    "Algieba": "Smooth",
    "Alnilam": "Firm",
    "Autonoe": "Bright",
    "Callirrhoe": "Easy-going",
    "Despina": "Smooth",
    "Enceladus": "Breathy",
    "Erinome": "Clear",
    "Gacrux": "Mature",
    "Iapetus": "Clear",
    "Laomedeia": "Upbeat",
    "Pulcherrima": "Forward",
    "Rasalgethi": "Informative",
    "Sadachbia": "Lively",
    "Sadaltager": "Knowledgeable",
    "Schedar": "Even",
    "Sulafat": "Warm",
    "Umbriel": "Easy-going",
    "Vindemiatrix": "Gentle",
    "Zubenelgenubi": "Casual",
}
VOICES = list(VOICE_STYLES)

# speechConfig.languageCode: the 30 BCP-47 codes the Live API documents (ai.google.dev/
# gemini-api/docs/live-guide, "Supported languages", updated 2025-05-01). "" is automatic: the
# field is left out and the model follows the language it hears (native-audio models choose
# the language themselves).
LANGUAGES = [
    ("", "Automatic (the language you speak)"),
    ("ar-XA", "Arabic (generic)"),
    ("bn-IN", "Bengali (India)"),
    ("cmn-CN", "Chinese, Mandarin (China)"),
    ("nl-NL", "Dutch (Netherlands)"),
    ("en-AU", "English (Australia)"),
    ("en-IN", "English (India)"),
    ("en-GB", "English (United Kingdom)"),
    ("en-US", "English (United States)"),
    ("fr-CA", "French (Canada)"),
    ("fr-FR", "French (France)"),
    ("de-DE", "German (Germany)"),
    ("gu-IN", "Gujarati (India)"),
    ("hi-IN", "Hindi (India)"),
    ("id-ID", "Indonesian (Indonesia)"),
    ("it-IT", "Italian (Italy)"),
    ("ja-JP", "Japanese (Japan)"),
    ("kn-IN", "Kannada (India)"),
    ("ko-KR", "Korean (South Korea)"),
    ("ml-IN", "Malayalam (India)"),
    ("mr-IN", "Marathi (India)"),
    ("pl-PL", "Polish (Poland)"),
    ("pt-BR", "Portuguese (Brazil)"),
    ("ru-RU", "Russian (Russia)"),
    ("es-ES", "Spanish (Spain)"),
    ("es-US", "Spanish (United States)"),
    ("ta-IN", "Tamil (India)"),
    ("te-IN", "Telugu (India)"),
    ("th-TH", "Thai (Thailand)"),
    ("tr-TR", "Turkish (Turkey)"),
    ("vi-VN", "Vietnamese (Vietnam)"),
]
LANGUAGE_CODES = [code for code, _ in LANGUAGES if code]

# generationConfig.mediaResolution: what each camera or screen frame costs the model
# (google-genai 3.6 MediaResolution: LOW 64 tokens, MEDIUM 256, HIGH zoomed reframing with
# 256). "" leaves the field out: the model's default.
MEDIA_RESOLUTIONS = [
    ("", "Model default"),
    ("low", "Low: about 64 tokens a frame, the cheapest"),
    ("medium", "Medium: about 256 tokens a frame"),
    ("high", "High: most detail (zoomed in), for small print; at least as costly as Medium"),
]
MEDIA_RESOLUTION_VALUES = {
    "low": "MEDIA_RESOLUTION_LOW",
    "medium": "MEDIA_RESOLUTION_MEDIUM",
    "high": "MEDIA_RESOLUTION_HIGH",
}


STANDING_HEADER = "The user's standing instructions:"


def with_standing_instructions(built: dict[str, Any], standing: str) -> dict[str, Any]:
    """The upstream setup message ({"setup": …}) with the user's standing instructions
    appended after the base instruction and the persona, as a paragraph of their own under a
    heading that says whose they are; unchanged when there are none."""
    text = (standing or "").strip()
    if not text:
        return built
    setup = built["setup"]
    instruction = setup.get("systemInstruction")
    parts = list(instruction.get("parts") or []) if isinstance(instruction, dict) else []
    before = "\n\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)).strip()
    merged = "\n\n".join(t for t in (before, f"{STANDING_HEADER}\n{text}") if t)
    content: dict[str, Any] = {"parts": [{"text": merged}]}
    if isinstance(instruction, dict) and isinstance(instruction.get("role"), str):
        content["role"] = instruction["role"]
    return {**built, "setup": {**setup, "systemInstruction": content}}
