"""Token accounting for `usageMetadata`: deterministic made-up counts, proto3-style output.

Text costs 1 token per 4 characters, audio 25 tokens per second (in and out), video 258
tokens per frame; zero counts are left out, `totalTokenCount` is always there.
"""

from __future__ import annotations

import math
from typing import Any

AUDIO_TOKENS_PER_SECOND = 25
TOKENS_PER_FRAME = 258


def prompt_tokens(text: str, audio_seconds: float, frames: int) -> dict[str, int]:
    """What a user turn's input cost, by modality (zero counts omitted)."""
    prompt = {
        "TEXT": math.ceil(len(text) / 4),
        "AUDIO": round(audio_seconds * AUDIO_TOKENS_PER_SECOND),
        "VIDEO": frames * TOKENS_PER_FRAME,
    }
    return {modality: count for modality, count in prompt.items() if count}


def usage_metadata(
    prompt: dict[str, int], modality: str, out_audio: float, out_text: int
) -> dict[str, Any]:
    """The `usageMetadata` of a turn: its prompt plus `out_audio` seconds or `out_text` chars."""
    if modality == "AUDIO":
        response = round(out_audio * AUDIO_TOKENS_PER_SECOND)
    else:
        response = math.ceil(out_text / 4)
    prompt_total = sum(prompt.values())
    usage: dict[str, Any] = {"totalTokenCount": prompt_total + response}
    if prompt_total:
        usage["promptTokenCount"] = prompt_total
        usage["promptTokensDetails"] = [
            {"modality": name, "tokenCount": count} for name, count in prompt.items()
        ]
    if response:
        usage["responseTokenCount"] = response
        usage["responseTokensDetails"] = [{"modality": modality, "tokenCount": response}]
    return usage
