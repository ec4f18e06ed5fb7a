"""Control events over the channel layer (low-rate only; media never rides the layer).

Every live session joins `user.<id>` and `conversation.<uuid>`, and a Gemini-path session
opened with an access token (or with an ephemeral token minted with one) `token.<id>`.
Staff, `end_session`, logout and the loss of a credential send `live.end` there, and
whichever worker holds the session closes it. An event may spare the sockets of one browser
(`keep`, a Django session key: a password change keeps its own browser signed in) or be for
one path only (`path`: "web" or "gemini"). The groups are kept by each worker's hub in
memory; an event reaches every worker once (assistant/live/control_hub.py).
"""

import logging

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from assistant.live import control_hub
from assistant.live.errors import EndKind, SessionEnd
from assistant.models import Conversation, SessionLease

logger = logging.getLogger(__name__)

END_EVENT = "live.end"  # handled by the live consumers' `live_end` method
ENDED, SIGNED_OUT = EndKind.ENDED, EndKind.SIGNED_OUT  # the kinds an event may carry

# Why a session ended with its credential (web: 4401; Gemini path: 1008, this reason).
# (Reasons, not secrets: S105 is about the names.)
REASON_TOKEN_REVOKED = "The access token behind this session was revoked."  # noqa: S105
REASON_EPHEMERAL_REVOKED = "Its ephemeral token was revoked."
REASON_DELETED = "This conversation was deleted."
REASON_DELETED_BY_STAFF = "This conversation was deleted by an administrator."
REASON_DEACTIVATED = "Your account was deactivated."
REASON_PASSWORD_CHANGED = "Your password was changed in another browser. Sign in again."  # noqa: S105
REASON_PASSWORD_RESET = "Your password was reset. Sign in again."  # noqa: S105


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id) -> str:
    return f"conversation.{conversation_id}"


def token_group(access_token_id: int) -> str:
    return f"token.{access_token_id}"


def session_groups(*, user_id: int, conversation_id, access_token_id: int | None) -> tuple:
    """The groups a live session joins once it has its conversation."""
    groups = (user_group(user_id), conversation_group(conversation_id))
    return groups if access_token_id is None else (*groups, token_group(access_token_id))


def _group(user_id, conversation_id, access_token_id) -> str:
    given = [x for x in (user_id, conversation_id, access_token_id) if x is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of user_id, conversation_id or access_token_id")
    if user_id is not None:
        return user_group(user_id)
    if conversation_id is not None:
        return conversation_group(conversation_id)
    return token_group(access_token_id)


async def aend_sessions(
    *,
    user_id: int | None = None,
    conversation_id=None,
    access_token_id: int | None = None,
    reason: str = "Ended by an administrator",
    kind: EndKind = EndKind.ENDED,
    keep: str | None = None,
    path: str | None = None,
) -> None:
    """Ask every worker to end the matching live sessions. Raises if the layer is down."""
    event = {"type": END_EVENT, "reason": reason[:120]}
    if kind is not EndKind.ENDED:
        event["kind"] = str(kind)
    if keep:
        event["keep"] = keep
    if path:
        event["path"] = path
    await control_hub.send(_group(user_id, conversation_id, access_token_id), event)


def end_sessions(
    *,
    user_id: int | None = None,
    conversation_id=None,
    access_token_id: int | None = None,
    reason: str = "",
    **options,
) -> int:
    """Sync wrapper for views, admin actions and commands. Returns how many live sessions
    it signalled (counted from the database before signalling)."""
    if access_token_id is not None:
        from assistant.services import LEASE_STALE_AFTER  # services imports this module

        fresh = timezone.now() - LEASE_STALE_AFTER
        count = SessionLease.objects.filter(
            access_token_id=access_token_id, heartbeat_at__gte=fresh
        ).count()
    else:
        active = Conversation.objects.filter(status=Conversation.Status.ACTIVE)
        if user_id is not None:
            active = active.filter(user_id=user_id)
        else:
            active = active.filter(pk=conversation_id)
        count = active.count()
    async_to_sync(aend_sessions)(
        user_id=user_id,
        conversation_id=conversation_id,
        access_token_id=access_token_id,
        reason=reason or "Ended by an administrator",
        **options,
    )
    return count


def end_conversations(conversation_ids, *, reason: str) -> None:
    """End the live sessions of these conversations now, one signal each, before the caller
    takes away what they stand on (a deletion, a revoked ephemeral token): their workers stop
    writing to records that are going away. A down channel layer is logged, never raised:
    the caller's change must not wait for it (a recorder drops a batch whose record is gone,
    assistant/live/record_writer.py; the lease renewal ends what the layer missed)."""
    for conversation_id in conversation_ids:
        try:
            end_sessions(conversation_id=conversation_id, reason=reason)
        except Exception:
            logger.warning("conv=%s live.end not signalled", conversation_id, exc_info=True)


def end_sessions_on_commit(**kwargs) -> None:
    """`end_sessions` once the current transaction commits (at once outside one), so that a
    session reconnecting at once sees the change. A down channel layer is logged, never
    raised: the lease renewal (services.lease_renew) ends what the layer missed."""

    def send() -> None:
        try:
            end_sessions(**kwargs)
        except Exception:
            logger.warning("live.end not signalled (%s)", kwargs.get("reason"), exc_info=True)

    transaction.on_commit(send)


def end_for(event: dict, *, path: str, scope: dict) -> SessionEnd | None:
    """What a `live.end` event means to one socket: None when it spares it (another path,
    or the browser it keeps), else the end, with the event's kind and reason."""
    if event.get("path") and event["path"] != path:
        return None
    if keep := event.get("keep"):
        session = scope.get("session")
        if session is not None and getattr(session, "session_key", None) == keep:
            return None
    kind = SIGNED_OUT if event.get("kind") == SIGNED_OUT else ENDED
    return SessionEnd(kind, str(event.get("reason") or ""))
