"""The state one server's sessions share: config, ids, handles, tokens, voice, admission, totals.

The server creates one `EmulatorContext` and hands it to every session, so sessions never
reach back into the server. Everything here runs on the server's event loop.
"""

from __future__ import annotations

import random

from .config import EmulatorConfig
from .resumption import HandleStore
from .speech import SpeechSynth
from .stats import Counters
from .tokens import TokenStore


class EmulatorContext:
    """Shared by every session of one server.

    `store` and the id methods draw from one generator seeded by `config.seed`, so a run is
    reproducible. `admit`/`dismiss` count sessions past setup against `max_sessions`;
    `closed` sums the counters of connections that have ended.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self.store = HandleStore(config.resumption_ttl, self._rng)
        self.tokens = TokenStore(self._rng)  # ephemeral tokens minted on this server
        self.speech = SpeechSynth(config.tts)
        self.closed = Counters()
        self._connections = 0
        self._admitted = 0

    # --- ids ----------------------------------------------------------------------------

    def next_connection_id(self) -> str:
        self._connections += 1
        return f"conn-{self._connections}"

    def function_call_id(self) -> str:
        return f"function-call-{self._rng.getrandbits(64)}"

    def trace_id(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    # --- admission (max concurrent sessions) ----------------------------------------------

    @property
    def active_sessions(self) -> int:
        """Sessions admitted (past setup) whose connection has not ended yet."""
        return self._admitted

    def admit(self) -> bool:
        """Count one more live session, unless that would pass `max_sessions` (0: no limit)."""
        limit = self.config.max_sessions
        if limit and self._admitted >= limit:
            return False
        self._admitted += 1
        return True

    def dismiss(self) -> None:
        """An admitted session's connection has ended."""
        self._admitted -= 1

    # --- totals -------------------------------------------------------------------------

    def connection_closed(self, counters: Counters) -> None:
        """Count a connection's end and fold its counters into the closed totals."""
        counters.closes += 1
        self.closed.add(counters)
