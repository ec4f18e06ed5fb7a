"""What Gemini's `turnCompleteReason` values mean in plain words, for the person (the web UI's
transcript and the conversation record). Values from google-genai 3.6's TurnCompleteReason."""

from __future__ import annotations

NEED_MORE_INPUT = "NEED_MORE_INPUT"

_INPUT_BLOCKED = "No answer: the model's safety filters blocked this message."
_IMAGE_BLOCKED = (
    "No answer: the model's safety filters blocked the picture from your camera or screen."
)
_REPLY_STOPPED = "The reply was stopped: it did not pass the model's safety checks."

_TEXTS = {
    NEED_MORE_INPUT: "The model is waiting for you to go on.",
    "PROHIBITED_INPUT_CONTENT": _INPUT_BLOCKED,
    "INPUT_TEXT_NCII_PROHIBITED": _INPUT_BLOCKED,
    "INPUT_OTHER": _INPUT_BLOCKED,
    "UNSAFE_PROMPT_FOR_IMAGE_GENERATION": _INPUT_BLOCKED,
    "IMAGE_PROHIBITED_INPUT_CONTENT": _IMAGE_BLOCKED,
    "INPUT_IMAGE_PHOTO_REALISTIC_CHILD_PROHIBITED": _IMAGE_BLOCKED,
    "INPUT_IMAGE_CELEBRITY": "No answer: the model does not respond to pictures of celebrities.",
    "INPUT_TEXT_CONTAIN_PROMINENT_PERSON_PROHIBITED": (
        "No answer: the model does not respond to this request about a prominent person."
    ),
    "INPUT_IP_PROHIBITED": "No answer: the request may infringe someone's intellectual property.",
    "BLOCKLIST": "No answer: the message contains words the service blocks.",
    "RESPONSE_REJECTED": "No answer: the model rejected its own reply. Try asking another way.",
    "MALFORMED_FUNCTION_CALL": (
        "The reply stopped: the model made a tool call that could not be run. Try asking again."
    ),
    "MAX_REGENERATION_REACHED": (
        "No answer: the model could not produce an acceptable reply. Try asking another way."
    ),
    "GENERATED_AUDIO_SAFETY": "The reply was stopped: its audio did not pass the safety checks.",
    "GENERATED_CONTENT_SAFETY": _REPLY_STOPPED,
    "GENERATED_CONTENT_PROHIBITED": _REPLY_STOPPED,
    "GENERATED_CONTENT_BLOCKLIST": _REPLY_STOPPED,
    "GENERATED_OTHER": _REPLY_STOPPED,
}


def reason_text(reason: str) -> str:
    """A plain sentence for a turnCompleteReason (an unknown one still gets one)."""
    if text := _TEXTS.get(reason):
        return text
    if reason.startswith(("INPUT_", "IMAGE_")) or "PROHIBITED_INPUT" in reason:
        return _INPUT_BLOCKED
    if reason.startswith("GENERATED_") or reason.startswith("OUTPUT_"):
        return _REPLY_STOPPED
    return "The reply ended early, without an answer."


def is_waiting(reason: str) -> bool:
    """The turn ended because the model expects the person to go on (not a refusal)."""
    return reason == NEED_MORE_INPUT
