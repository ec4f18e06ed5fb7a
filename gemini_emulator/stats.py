"""The counters GET /stats reports, per connection and in total."""

from __future__ import annotations


class Counters:
    """The integers GET /stats reports, per connection and in total."""

    __slots__ = ("audio_bytes", "closes", "setups", "tool_calls", "turns", "video_frames")
    NAMES = ("setups", "turns", "audio_bytes", "video_frames", "tool_calls", "closes")

    def __init__(self) -> None:
        for name in self.NAMES:
            setattr(self, name, 0)

    def add(self, other: Counters) -> None:
        for name in self.NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.NAMES}
