"""Emulator settings: one dataclass, filled from EMULATOR_* environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("script", "echo")
FRAMES = ("binary", "text")
TTS_CHOICES = ("auto", "espeak", "synthetic")


class ConfigError(ValueError):
    """An EMULATOR_* variable has a value the emulator cannot use."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that tunes the emulator; every field has an EMULATOR_* variable.

    Tests build one directly (`EmulatorConfig(pace=0, connection_seconds=2)`), the command
    line uses `EmulatorConfig.from_env()`.
    """

    host: str = "127.0.0.1"
    port: int = 0
    # Empty: any non-empty key is accepted. Set: the key must match exactly.
    api_key: str = ""
    # Connection lifetime; `goAway` goes out `goaway_seconds` before the end.
    connection_seconds: float = 600.0
    goaway_seconds: float = 50.0
    # Audio output speed as a multiple of real time (Google sends faster than real time).
    # 0 means "as fast as possible" (still yielding between chunks so barge-in works).
    pace: float = 10.0
    # Model "thinking" time before the first reply message of a turn.
    reply_delay: float = 0.0
    # Hold turnComplete until the reply's audio would have finished playing (as Google does).
    playback_wait: bool = False
    # Output audio chunk length in milliseconds (24 kHz PCM16: 100 ms = 4800 bytes).
    chunk_ms: int = 100
    # Concurrent sessions (connections past `setup`); 0 = unlimited.
    max_sessions: int = 1000
    mode: str = "script"
    frames: str = "binary"
    tts: str = "auto"
    # Energy VAD: RMS threshold (PCM16 full scale is 32767).
    vad_threshold: int = 500
    # How long resumption handles stay valid after their session ended.
    resumption_ttl: float = 7200.0
    # Some models send `turnComplete` right after a `toolCall` (livekit/agents#3192).
    tool_call_turn_complete: bool = False
    # Seed for function-call ids and resumption handles.
    seed: int = 0
    # TLS (PEM files); both or neither.
    tls_cert: str = ""
    tls_key: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"EMULATOR_MODE must be one of {MODES}, not {self.mode!r}")
        if self.frames not in FRAMES:
            raise ConfigError(f"EMULATOR_FRAMES must be one of {FRAMES}, not {self.frames!r}")
        if self.tts not in TTS_CHOICES:
            raise ConfigError(f"EMULATOR_TTS must be one of {TTS_CHOICES}, not {self.tts!r}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("TLS needs both a certificate and a key")
        if self.chunk_ms <= 0 or self.chunk_ms > 2000:
            raise ConfigError("EMULATOR_CHUNK_MS must be between 1 and 2000")
        for name in ("connection_seconds", "goaway_seconds", "pace", "reply_delay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    def replace(self, **changes: object) -> EmulatorConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object):
        """Build a config from EMULATOR_* variables; raises ConfigError on a bad value."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(_ENV_NAMES.get(field.name, "EMULATOR_" + field.name.upper()))
            if raw is None or raw.strip() == "":
                continue
            values[field.name] = _parse(field.name, field.type, raw.strip())
        values.update(overrides)
        return cls(**values)


# Names that do not follow the EMULATOR_<FIELD> pattern.
_ENV_NAMES = {
    "reply_delay": "EMULATOR_REPLY_DELAY_SECONDS",
    "resumption_ttl": "EMULATOR_RESUMPTION_TTL_SECONDS",
}


def _parse(name: str, kind: object, raw: str) -> object:
    kind = str(kind)
    try:
        if kind == "bool":
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"bad value for {name}: {raw!r}") from exc
    return raw
