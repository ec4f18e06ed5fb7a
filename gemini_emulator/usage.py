"""Token accounting for `usageMetadata`: deterministic made-up counts, proto3-style output.

Text costs 1 token per 4 characters, audio 25 tokens per second (in and out), video by
`mediaResolution` (see `rules.MEDIA_TOKENS`: 258 per frame unset, LOW 64, MEDIUM/HIGH 256),
thoughts 1 token per 4 characters; zero counts are left out, `totalTokenCount` is always there.
"""

from __future__ import annotations

import math
from typing import Any

AUDIO_TOKENS_PER_SECOND = 25
TOKENS_PER_FRAME = 258


def prompt_tokens(
    text: str, audio_seconds: float, frames: int, per_frame: int = TOKENS_PER_FRAME
) -> dict[str, int]:
    """What a user turn's input cost, by modality (zero counts omitted)."""
    prompt = {
        "TEXT": math.ceil(len(text) / 4),
        "AUDIO": round(audio_seconds * AUDIO_TOKENS_PER_SECOND),
        "VIDEO": frames * per_frame,
    }
    return {modality: count for modality, count in prompt.items() if count}


def usage_metadata(
    prompt: dict[str, int], modality: str, out_audio: float, out_text: int, thoughts: int = 0
) -> dict[str, Any]:
    """The `usageMetadata` of a turn: its prompt plus `out_audio` seconds or `out_text` chars
    (and `thoughts` characters of thought parts)."""
    if modality == "AUDIO":
        response = round(out_audio * AUDIO_TOKENS_PER_SECOND)
    else:
        response = math.ceil(out_text / 4)
    prompt_total = sum(prompt.values())
    thought_tokens = math.ceil(thoughts / 4)
    usage: dict[str, Any] = {"totalTokenCount": prompt_total + response + thought_tokens}
    if thought_tokens:
        usage["thoughtsTokenCount"] = thought_tokens
    if prompt_total:
        usage["promptTokenCount"] = prompt_total
        usage["promptTokensDetails"] = [
            {"modality": name, "tokenCount": count} for name, count in prompt.items()
        ]
    if response:
        usage["responseTokenCount"] = response
        usage["responseTokensDetails"] = [{"modality": modality, "tokenCount": response}]
    return usage
