"""What the session and its client adapters agree on: the SessionSpec an adapter starts a
session with, the ClientSink it implements to receive the session's events (and the Adapter
base both adapters share), and the deployment's choice of model for what a client asks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings

from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini import setup as policy
from assistant.live.gemini.server import ServerView
from assistant.live.recorder import TurnSummary
from assistant.live.tool_calls import Routing

if TYPE_CHECKING:
    from assistant.live.session import LiveSession


class ClientSink(Protocol):
    """What an adapter implements. All sync, none may block."""

    def started(self, session: LiveSession) -> None: ...

    def ready(self) -> None: ...

    def state(self, state: str) -> None: ...

    def server_message(self, view: ServerView, routing: Routing) -> None: ...

    def tool_activity(self, **event: Any) -> None: ...

    def turn_finished(self, summary: TurnSummary) -> None: ...

    def features_unavailable(self, features: list[str]) -> None: ...

    def tools_unavailable(self, servers: list[str]) -> None: ...


@dataclass(frozen=True)
class SessionSpec:
    user_id: int
    client_kind: str  # Conversation.ClientKind value
    setup: policy.ClientSetup
    model: str  # resolved and allowed
    voice: str = ""
    conversation_id: Any = None  # resume this conversation
    api_version: str = "v1beta"
    ephemeral_token_id: int | None = None  # opened with this ephemeral token (counts a use)
    access_token_id: int | None = None  # the access token behind it (revoking it ends it)


def allowed_model(requested: str) -> str | None:
    """The deployment's model for what a client asked (aliases, allow-list), or None."""
    return policy.resolve_model(
        requested,
        default=settings.PASTRA_MODEL,
        aliases=settings.PASTRA_MODEL_ALIASES,
        allowed=settings.PASTRA_ALLOWED_MODELS,
    )


Close = tuple[list[str], int, str]  # frames to send first, close code, reason


class Adapter:
    """What both client adapters share: the session they serve once it exists, the close
    (none for a client that went away), and no-op defaults for the sink's events."""

    path_name = "?"
    session: LiveSession | None = None

    def attach(self, session: LiveSession) -> None:
        self.session = session
        self.downlink = session.downlink

    def close_for(self, end: SessionEnd) -> Close | None:
        """Frames, code and reason to close with, or None when the client is gone."""
        return None if end.kind is EndKind.CLIENT_GONE else self.close(end)

    def close(self, end: SessionEnd) -> Close:
        raise NotImplementedError

    def started(self, session: LiveSession) -> None:
        pass

    def state(self, state: str) -> None:
        pass

    def tool_activity(self, **event: Any) -> None:
        pass

    def turn_finished(self, summary: TurnSummary) -> None:
        pass

    def features_unavailable(self, features: list[str]) -> None:
        pass

    def tools_unavailable(self, servers: list[str]) -> None:
        """MCP tool servers whose tools this session goes without (down, slow, refusing)."""
