"""Persona presets offered in the web app's settings (system-instruction additions).

The deployment's own base instruction (PASTRA_SYSTEM_INSTRUCTION) always comes first; a persona
is appended to it by the bridge. Voices are the prebuilt Gemini voices the UI offers.
"""

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

VOICES = ["Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr"]
