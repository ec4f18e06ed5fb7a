"""Every write to Pastra's tables. Sync, keyword-only, `<entity>_<action>`; they raise the
domain errors of assistant/errors.py. Async callers wrap them with `live_db` (assistant/live/db.py)
or `database_sync_to_async`."""

import hashlib
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from assistant import selectors
from assistant.errors import (
    ConversationBusy,
    ConversationNotFound,
    DailyAllowanceUsed,
    EphemeralTokenRefused,
    TooManySessions,
)
from assistant.models import (
    AccessToken,
    Conversation,
    ConversationEvent,
    EphemeralToken,
    SessionLease,
    User,
)

TOKEN_PREFIX = "pst_"  # noqa: S105 (a public marker, not a secret)
# Google's ephemeral tokens are named `auth_tokens/…`; the SDKs switch to the Constrained
# socket on that prefix. Pastra's own add a marker after it.
EPHEMERAL_PREFIX = "auth_tokens/pse_"
EPHEMERAL_KEPT = timedelta(days=1)  # an expired ephemeral token's row is kept this long
_TITLE_KINDS = {ConversationEvent.Kind.USER_TEXT, ConversationEvent.Kind.INPUT_TRANSCRIPT}


@dataclass(frozen=True)
class EventRecord:
    """One event to append to a conversation's log (built in memory, written in batches)."""

    kind: str
    text: str = ""
    data: dict = field(default_factory=dict)
    turn: int = 0
    duration_ms: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    response_tokens: int = 0
    total_tokens: int = 0


def conversation_start(
    *,
    user_id: int,
    model: str,
    voice: str = "",
    client_kind: str = Conversation.ClientKind.WEB,
) -> Conversation:
    return Conversation.objects.create(
        user_id=user_id, model=model, voice=voice, client_kind=client_kind
    )


@transaction.atomic
def conversation_record(
    *,
    conversation_id,
    events: Iterable[EventRecord] = (),
    usage: Usage | None = None,
    seconds: float = 0.0,
    resumption_handle: str | None = None,
) -> int:
    """Append events (dense `seq`), add usage and live seconds, keep the latest handle.

    One transaction per batch: the recorder calls this once per turn, not per fragment.
    Returns the number of events written.
    """
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    events = list(events)
    now = timezone.now()
    next_seq = (conversation.events.aggregate(m=Max("seq"))["m"] or 0) + 1
    rows = [
        ConversationEvent(
            conversation_id=conversation.pk,
            seq=next_seq + i,
            turn=e.turn,
            kind=e.kind,
            text=e.text,
            data=e.data,
            duration_ms=e.duration_ms,
            created_at=e.created_at or now,
        )
        for i, e in enumerate(events)
    ]
    ConversationEvent.objects.bulk_create(rows)

    changes: dict = {}
    if usage is not None:
        changes["prompt_tokens"] = F("prompt_tokens") + usage.prompt_tokens
        changes["response_tokens"] = F("response_tokens") + usage.response_tokens
        changes["total_tokens"] = F("total_tokens") + usage.total_tokens
    if seconds:
        changes["seconds_used"] = F("seconds_used") + seconds
    if resumption_handle is not None:
        changes["resumption_handle"] = resumption_handle
    kinds = {e.kind for e in events}
    if kinds & {ConversationEvent.Kind.TOOL_CALL, ConversationEvent.Kind.CODE_EXECUTION}:
        changes["has_tool_calls"] = True
    if ConversationEvent.Kind.ERROR in kinds:
        changes["has_errors"] = True
    if not conversation.title:
        first = next((e.text for e in events if e.kind in _TITLE_KINDS and e.text.strip()), "")
        if first:
            changes["title"] = first.strip()[:200]
    if changes:
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
    return len(rows)


def conversation_end(
    *,
    conversation_id,
    reason: str,
    status: str = Conversation.Status.ENDED,
) -> bool:
    """Mark a conversation ended (idempotent: an already ended one keeps its first reason)."""
    updated = Conversation.objects.filter(
        pk=conversation_id, status=Conversation.Status.ACTIVE
    ).update(status=status, end_reason=reason[:200], ended_at=timezone.now())
    return bool(updated)


def conversation_reopen(*, conversation_id) -> None:
    """A client came back to an ended conversation (resume): it is active again."""
    Conversation.objects.filter(pk=conversation_id).update(
        status=Conversation.Status.ACTIVE, ended_at=None, end_reason=""
    )


def conversation_delete(*, user: User, conversation_id) -> bool:
    deleted, _ = Conversation.objects.filter(pk=conversation_id, user=user).delete()
    return bool(deleted)


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def access_token_create(*, user: User, name: str) -> tuple[AccessToken, str]:
    """Create a token; returns (record, raw token). The raw token is not stored anywhere."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        user=user,
        name=name.strip()[:100] or "token",
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        token_hash=_hash_token(raw),
    )
    return token, raw


def access_token_revoke(*, user: User, token_id: int) -> bool:
    updated = AccessToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return bool(updated)


def access_token_find(*, raw: str) -> AccessToken | None:
    """The active token of an active user for this raw token, or None. Records the use."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        AccessToken.objects.select_related("user")
        .filter(token_hash=_hash_token(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def access_token_authenticate(*, raw: str) -> User | None:
    """The active user owning this raw token, or None. Records the use."""
    token = access_token_find(raw=raw)
    return token.user if token is not None else None


# --- ephemeral tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class EphemeralGrant:
    """What a valid ephemeral token lets its bearer do (read when the socket connects)."""

    token_id: int
    user_id: int
    expire_time: datetime
    model: str  # locked model, resolved; "" = the client's choice
    setup: dict | None
    field_mask: tuple[str, ...]


def ephemeral_token_create(
    *,
    access_token: AccessToken,
    uses: int,
    expire_time: datetime,
    new_session_expire_time: datetime,
    model: str = "",
    setup: dict | None = None,
    field_mask: Iterable[str] = (),
) -> tuple[EphemeralToken, str]:
    """Mint a token for the access token's owner; returns (record, raw `auth_tokens/…`).
    The caller has validated the request (assistant/auth_tokens.py). The owner's tokens
    expired for a day or more are deleted on the way."""
    EphemeralToken.objects.filter(
        user_id=access_token.user_id, expire_time__lt=timezone.now() - EPHEMERAL_KEPT
    ).delete()
    raw = EPHEMERAL_PREFIX + secrets.token_urlsafe(32)
    start = len("auth_tokens/")
    token = EphemeralToken.objects.create(
        user_id=access_token.user_id,
        access_token=access_token,
        prefix=raw[start : len(EPHEMERAL_PREFIX) + 6],
        token_hash=_hash_token(raw),
        expire_time=expire_time,
        new_session_expire_time=new_session_expire_time,
        uses=uses,
        model=model,
        setup=setup,
        field_mask=list(field_mask),
    )
    return token, raw


def ephemeral_token_revoke(*, user: User, token_id: int) -> list | None:
    """Revoke it: None if it was not this user's or already revoked, else the conversations
    still live with it (the caller ends them over the channel layer)."""
    updated = EphemeralToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        return None
    fresh = timezone.now() - LEASE_STALE_AFTER
    leases = SessionLease.objects.filter(ephemeral_token_id=token_id, heartbeat_at__gte=fresh)
    return list(leases.values_list("conversation_id", flat=True))


def _ephemeral_check(token: EphemeralToken | None, *, now: datetime, new_session: bool) -> None:
    """Raises EphemeralTokenRefused unless the token may be used now (to start a new
    session when `new_session`; resuming one counts no use and ignores the new-session time)."""
    refused = EphemeralTokenRefused
    if token is None or not token.user.is_active:
        raise refused(refused.INVALID)
    if token.revoked_at is not None:
        raise refused(refused.REVOKED)
    if token.access_token.revoked_at is not None:
        raise refused(refused.MINTER_REVOKED)
    if now >= token.expire_time:
        raise refused(refused.EXPIRED)
    if new_session and now >= token.new_session_expire_time:
        raise refused(refused.NO_NEW_SESSIONS)
    if new_session and token.uses and token.uses_count >= token.uses:
        raise refused(refused.USED_UP, uses=token.uses)


def ephemeral_token_authenticate(*, raw: str) -> EphemeralGrant:
    """The grant of a raw `auth_tokens/…` token. Raises EphemeralTokenRefused (invalid,
    revoked, minted with a since revoked access token, expired). Uses are counted when a
    session starts (`lease_acquire`), not here."""
    token = None
    if raw.startswith(EPHEMERAL_PREFIX) and len(raw) <= 200:
        token = (
            EphemeralToken.objects.select_related("user", "access_token")
            .filter(token_hash=_hash_token(raw))
            .first()
        )
    _ephemeral_check(token, now=timezone.now(), new_session=False)
    return EphemeralGrant(
        token_id=token.pk,
        user_id=token.user_id,
        expire_time=token.expire_time,
        model=token.model,
        setup=token.setup,
        field_mask=tuple(token.field_mask),
    )


def _ephemeral_use(token_id: int, *, user_id: int, now: datetime, new_session: bool) -> None:
    """Check the token again under a row lock and count a use for a new session."""
    token = (
        EphemeralToken.objects.select_for_update()
        .select_related("user", "access_token")
        .filter(pk=token_id, user_id=user_id)
        .first()
    )
    _ephemeral_check(token, now=now, new_session=new_session)
    changes: dict = {"last_used_at": now}
    if new_session:
        changes["uses_count"] = F("uses_count") + 1
    EphemeralToken.objects.filter(pk=token_id).update(**changes)


# --- session leases ---------------------------------------------------------------------------

LEASE_STALE_AFTER = timedelta(seconds=90)  # holders renew every 30 s (assistant/live/lease.py)
WORKER = f"{socket.gethostname()}:{os.getpid()}"[:120]


@dataclass(frozen=True)
class LeaseGrant:
    """A taken lease and the conversation it records into."""

    conversation_id: object
    lease_id: object
    upstream_handle: str
    next_turn: int
    remaining_seconds: float
    resumed: bool


@transaction.atomic
def lease_acquire(
    *,
    user_id: int,
    model: str,
    voice: str,
    client_kind: str,
    conversation_id=None,
    take_over: bool = False,
    ephemeral_token_id: int | None = None,
) -> LeaseGrant:
    """Check the user's quotas, take a lease, start or reopen the conversation.

    Raises ConversationNotFound, ConversationBusy, TooManySessions, DailyAllowanceUsed or
    EphemeralTokenRefused. `take_over` drops a fresh lease still held on the conversation
    (its holder was told to end and did not, or its worker died less than
    LEASE_STALE_AFTER ago). A session opened with an ephemeral token counts one of its uses
    (none to resume a conversation), in this transaction: a refusal counts none.
    """
    user = User.objects.select_for_update().get(pk=user_id)  # serialises a user's starts
    now = timezone.now()
    if ephemeral_token_id is not None:
        _ephemeral_use(
            ephemeral_token_id, user_id=user_id, now=now, new_session=conversation_id is None
        )
    stale_before = now - LEASE_STALE_AFTER
    fresh = SessionLease.objects.filter(user_id=user_id, heartbeat_at__gte=stale_before)
    SessionLease.objects.filter(user_id=user_id, heartbeat_at__lt=stale_before).delete()
    conversation = None
    if conversation_id is not None:
        conversation = Conversation.objects.filter(pk=conversation_id, user_id=user_id).first()
        if conversation is None:
            raise ConversationNotFound
        holders = fresh.filter(conversation=conversation)
        if holders.exists():
            if not take_over:
                raise ConversationBusy
            holders.delete()
    limit = user.effective_max_sessions()
    if fresh.count() >= limit:
        raise TooManySessions(limit)
    daily = user.effective_daily_seconds()
    used = selectors.user_live_seconds_today(user_id=user_id)
    if used >= daily:
        raise DailyAllowanceUsed(daily)
    if conversation is None:
        conversation = conversation_start(
            user_id=user_id, model=model, voice=voice, client_kind=client_kind
        )
        next_turn, handle, resumed = 1, "", False
    else:
        conversation_reopen(conversation_id=conversation.pk)
        last = (
            conversation.events.exclude(kind=ConversationEvent.Kind.SESSION).aggregate(
                m=Max("turn")
            )["m"]
            or 0
        )
        next_turn, resumed = last + 1, True
        # Gemini refuses a model change on resumption: then start a fresh upstream session.
        handle = conversation.resumption_handle if conversation.model == model else ""
    lease = SessionLease.objects.create(
        user_id=user_id,
        conversation=conversation,
        worker=WORKER,
        client_kind=client_kind,
        heartbeat_at=now,
        ephemeral_token_id=ephemeral_token_id,
    )
    return LeaseGrant(
        conversation_id=conversation.pk,
        lease_id=lease.pk,
        upstream_handle=handle,
        next_turn=next_turn,
        remaining_seconds=daily - used,
        resumed=resumed,
    )


def lease_renew(*, lease_id, user_id: int) -> float:
    """Heartbeat; returns the user's live seconds left today (across all their sessions)."""
    SessionLease.objects.filter(pk=lease_id).update(heartbeat_at=timezone.now())
    user = User.objects.get(pk=user_id)
    return user.effective_daily_seconds() - selectors.user_live_seconds_today(user_id=user_id)


def lease_release(*, lease_id, conversation_id, reason: str, failed: bool) -> None:
    """Drop the lease and end its conversation (failed or ended, with the reason)."""
    SessionLease.objects.filter(pk=lease_id).delete()
    conversation_end(
        conversation_id=conversation_id,
        reason=reason,
        status=Conversation.Status.FAILED if failed else Conversation.Status.ENDED,
    )
