"""Session-resumption handles: in-memory, one store per server, valid 2 h after the end."""

from __future__ import annotations

import base64
import random
import time
from dataclasses import dataclass, field
from typing import Any

# A history entry: (role, text) with role "user", "model" or "function".
Entry = tuple[str, str]

_SWEEP_EVERY = 60.0


@dataclass(eq=False)
class SessionState:
    """The part of a session that outlives its connection.

    `history` is append-only; resuming replaces it with a copy cut at the handle's point,
    so a handle only needs (list, length) and older handles stay valid.
    """

    id: str
    model: str
    history: list[Entry] = field(default_factory=list)
    owner: Any = None  # the live connection, None once it has closed
    ended_at: float | None = None

    def user_turns(self) -> int:
        return sum(1 for role, _ in self.history if role == "user")


class HandleStore:
    """Maps handles to a point in a session's history; forgets them `ttl` seconds after
    the session's last connection closed."""

    def __init__(self, ttl: float, rng: random.Random) -> None:
        self.ttl = ttl
        self._rng = rng
        self._handles: dict[str, tuple[SessionState, list[Entry], int]] = {}
        self._sessions = 0
        self._next_sweep = time.monotonic() + _SWEEP_EVERY

    def new_session(self, model: str) -> SessionState:
        self._sessions += 1
        return SessionState(id=f"session-{self._sessions}", model=model)

    def issue(self, state: SessionState) -> str:
        """A fresh handle for the session as it is now."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        handle = "Cg" + base64.urlsafe_b64encode(self._rng.randbytes(30)).decode()
        self._handles[handle] = (state, state.history, len(state.history))
        return handle

    def lookup(self, handle: str) -> tuple[SessionState, list[Entry]] | None:
        """(session, history at the handle's point), or None if unknown or expired."""
        found = self._handles.get(handle)
        if found is None or self._expired(found[0], time.monotonic()):
            return None
        state, history, length = found
        return state, history[:length]

    def release(self, state: SessionState) -> None:
        state.owner = None
        state.ended_at = time.monotonic()

    def __len__(self) -> int:
        return len(self._handles)

    def _expired(self, state: SessionState, now: float) -> bool:
        return (
            state.owner is None and state.ended_at is not None and now - state.ended_at > self.ttl
        )

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + _SWEEP_EVERY
        stale = [key for key, (state, _, _) in self._handles.items() if self._expired(state, now)]
        for key in stale:
            del self._handles[key]
