"""Every write to Pastra's tables. Sync, keyword-only, `<entity>_<action>`; they raise the
domain errors of assistant/errors.py. Async callers wrap them with `live_db` (assistant/live/db.py)
or `database_sync_to_async`."""

import dataclasses
import functools
import hashlib
import json
import os
import secrets
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from assistant import control, metrics, selectors
from assistant.errors import (
    ConversationBusy,
    ConversationNotFound,
    CredentialRevoked,
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
_TOOL_KINDS = {ConversationEvent.Kind.TOOL_CALL, ConversationEvent.Kind.CODE_EXECUTION}


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


def conversation_record(
    *,
    conversation_id,
    events: Iterable[EventRecord] = (),
    usage: Usage | None = None,
    seconds: float = 0.0,
    resumption_handle: str | None = None,
) -> int:
    """Append events (dense `seq`), add usage and live seconds, keep the latest handle.

    One write per batch (the recorder calls this once per turn, not per fragment), numbered
    from `Conversation.last_seq` under the conversation row's lock, so concurrent writers to
    one conversation never collide. This is the only writer of events. On PostgreSQL it is one
    statement (one round trip, no ORM compilation: it runs at every turn of every session).
    Returns the number of events written; raises Conversation.DoesNotExist.
    """
    events = [_storable_event(e) for e in events]
    kinds = {e.kind for e in events}
    first = next((e.text for e in events if e.kind in _TITLE_KINDS and e.text.strip()), "")
    batch = _Batch(
        count=len(events),
        usage=usage or Usage(),
        seconds=seconds or 0.0,
        handle=resumption_handle,
        tools=bool(kinds & _TOOL_KINDS),
        errors=ConversationEvent.Kind.ERROR in kinds,
        title=first.strip()[:200],
    )
    now = timezone.now()
    if connection.vendor == "postgresql":
        _record_postgresql(conversation_id, events, batch, now)
    else:
        _record_portable(conversation_id, events, batch, now)
    return len(events)


@dataclass(frozen=True, slots=True)
class _Batch:
    count: int
    usage: Usage
    seconds: float
    handle: str | None
    tools: bool
    errors: bool
    title: str  # the conversation's title if it has none yet ("": none in this batch)


_CONVERSATION, _EVENT = Conversation._meta.db_table, ConversationEvent._meta.db_table
# The row lock, the numbering and the counters in the UPDATE; the events inserted from the
# arrays in the same statement (a data-modifying WITH runs whether read or not); the UPDATE's
# count tells a missing conversation from an empty batch.
_RECORD_SQL = f"""
WITH conversation AS (
    UPDATE {_CONVERSATION} SET
        last_seq = last_seq + %(n)s,
        prompt_tokens = prompt_tokens + %(prompt)s,
        response_tokens = response_tokens + %(response)s,
        total_tokens = total_tokens + %(total)s,
        seconds_used = seconds_used + %(seconds)s,
        resumption_handle = COALESCE(%(handle)s, resumption_handle),
        has_tool_calls = has_tool_calls OR %(tools)s,
        has_errors = has_errors OR %(errors)s,
        title = CASE WHEN title = '' THEN %(title)s ELSE title END
    WHERE id = %(id)s
    RETURNING id, last_seq - %(n)s AS base
), ins AS (
    INSERT INTO {_EVENT} (conversation_id, seq, turn, kind, "text", data, duration_ms, created_at)
    SELECT conversation.id, conversation.base + v.ord, v.turn, v.kind, v.body, v.data::jsonb,
        v.duration_ms, v.created_at
    FROM conversation CROSS JOIN unnest(
        %(turns)s::integer[], %(kinds)s::text[], %(texts)s::text[], %(datas)s::text[],
        %(durations)s::integer[], %(times)s::timestamptz[]
    ) WITH ORDINALITY AS v(turn, kind, body, data, duration_ms, created_at, ord)
)
SELECT count(*) FROM conversation
"""  # noqa: S608 (table names from the models, values as parameters)


def _record_postgresql(conversation_id, events: list[EventRecord], batch: _Batch, now) -> None:
    params = {
        "id": conversation_id,
        "n": batch.count,
        "prompt": batch.usage.prompt_tokens,
        "response": batch.usage.response_tokens,
        "total": batch.usage.total_tokens,
        "seconds": batch.seconds,
        "handle": batch.handle,
        "tools": batch.tools,
        "errors": batch.errors,
        "title": batch.title,
        "turns": [e.turn for e in events],
        "kinds": [str(e.kind) for e in events],
        "texts": [e.text for e in events],
        "datas": [json.dumps(e.data) for e in events],
        "durations": [e.duration_ms for e in events],
        "times": [e.created_at or now for e in events],
    }
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL, params)
        (found,) = cursor.fetchone()
    if not found:
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")


@transaction.atomic
def _record_portable(conversation_id, events: list[EventRecord], batch: _Batch, now) -> None:
    """The same write through the ORM (SQLite, the embedded default): the UPDATE takes the
    write lock first, so the numbering read after it is exact."""
    changes: dict = {"last_seq": F("last_seq") + batch.count}
    if batch.usage != Usage():
        changes["prompt_tokens"] = F("prompt_tokens") + batch.usage.prompt_tokens
        changes["response_tokens"] = F("response_tokens") + batch.usage.response_tokens
        changes["total_tokens"] = F("total_tokens") + batch.usage.total_tokens
    if batch.seconds:
        changes["seconds_used"] = F("seconds_used") + batch.seconds
    if batch.handle is not None:
        changes["resumption_handle"] = batch.handle
    if batch.tools:
        changes["has_tool_calls"] = True
    if batch.errors:
        changes["has_errors"] = True
    if batch.title:
        changes["title"] = Case(When(title="", then=Value(batch.title)), default=F("title"))
    conversations = Conversation.objects.filter(pk=conversation_id)
    if not conversations.update(**changes):
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")
    if not events:
        return
    base = conversations.values_list("last_seq", flat=True).get() - batch.count
    ConversationEvent.objects.bulk_create(
        ConversationEvent(
            conversation_id=conversation_id,
            seq=base + i,
            turn=e.turn,
            kind=e.kind,
            text=e.text,
            data=e.data,
            duration_ms=e.duration_ms,
            created_at=e.created_at or now,
        )
        for i, e in enumerate(events, start=1)
    )


# PostgreSQL refuses U+0000 in text and jsonb ("unsupported Unicode escape sequence"); a
# turn holding one would be lost whole. It is kept visible as U+FFFD instead.
_NUL, _REPLACEMENT = "\x00", "\ufffd"


def _storable(value):
    if isinstance(value, str):
        return value.replace(_NUL, _REPLACEMENT) if _NUL in value else value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _storable_event(event: EventRecord) -> EventRecord:
    text, data = _storable(event.text), _storable(event.data)
    if text is event.text and data == event.data:
        return event
    metrics.RECORDED_TEXT_REPAIRED.inc()
    return dataclasses.replace(event, text=text, data=data)


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
    """Delete one of the user's conversations with its events (`conversations_delete`)."""
    return bool(conversations_delete(Conversation.objects.filter(pk=conversation_id, user=user)))


@transaction.atomic
def conversations_delete(conversations) -> int:
    """Delete these conversations with their events and leases; returns how many.

    Locks, in the order every other writer takes them: the owners' rows first (in id order),
    as every lease change does (`lease_acquire`, `lease_renew`, `lease_release`); a session
    closing meanwhile (its end signalled just before a live delete) then either finishes
    first or finds its lease and conversation gone, and neither waits on the other's next
    row (taking the conversation first deadlocked with the close: each held a row the other
    was about to write). Then the conversations' rows: a live recorder takes the same lock to
    write a batch (`conversation_record`), so it commits before the events are collected or
    finds no conversation after (the batch is dropped, assistant/live/record_writer.py),
    never inserting between the two. A live lease's use since it was last settled is
    charged here, as its close would have: deleting a conversation never refunds its time."""
    ids = list(conversations.values_list("pk", flat=True))
    owners = Conversation.objects.filter(pk__in=ids).values_list("user_id", flat=True)
    locked_owners = User.objects.select_for_update().filter(pk__in=owners).order_by("pk")
    list(locked_owners.values_list("pk", flat=True))
    locked = Conversation.objects.filter(pk__in=ids).select_for_update()
    ids = list(locked.values_list("pk", flat=True))
    if ids:
        now = timezone.now()
        for lease in SessionLease.objects.filter(conversation_id__in=ids):
            _usage_add(lease.user_id, _usage_unsettled(lease, now), now)
        Conversation.objects.filter(pk__in=ids).delete()
    return len(ids)


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


@transaction.atomic
def access_token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke it; once committed, end every session it stands behind (opened with it, or
    with an ephemeral token it minted) on whichever worker holds it. False if it was not
    this user's or already revoked.

    The user's row lock orders this against `lease_acquire`, which checks the token under
    the same lock: a session starting meanwhile is either refused or already in its group.
    """
    User.objects.select_for_update().filter(pk=user.pk).first()
    updated = AccessToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        control.end_sessions_on_commit(
            access_token_id=token_id, kind=control.SIGNED_OUT, reason=control.REASON_TOKEN_REVOKED
        )
    return bool(updated)


def access_token_find(*, raw: str) -> AccessToken | None:
    """The active token of an active user for this raw token, or None. Records the use to
    the minute, as the token list shows it: a token already used this minute is not written
    again (a burst of sockets with one token: one query each, not two)."""
    found = _usable_token(raw)
    token = found.select_related("user").first() if found is not None else None
    if token is not None:
        token.last_used_at = _token_used(token.pk, token.last_used_at)
    return token


def access_token_identify(*, raw: str) -> tuple[int, int] | None:
    """`access_token_find` for a live socket, which needs only the ids: (token id, user id),
    or None. The same rules and use record (tests/test_services.py holds both to them) in
    one statement written once, not an ORM query compiled per socket: its compilation was
    most of the check's CPU (docs/connect-profile.md)."""
    if not _token_shaped(raw):
        return None
    now = timezone.now()
    minute = connection.ops.adapt_datetimefield_value(now.replace(second=0, microsecond=0))
    with connection.cursor() as cursor:
        cursor.execute(_IDENTIFY_SQL, [minute, _hash_token(raw)])
        row = cursor.fetchone()
    if row is None:
        return None
    token_id, user_id, used_before_this_minute = row
    if used_before_this_minute:
        AccessToken.objects.filter(pk=token_id).update(last_used_at=now)
    return token_id, user_id


_TOKEN = AccessToken._meta.db_table
# `_usable_token`'s rules, and whether the use is to be recorded (`_token_used`'s rule).
_IDENTIFY_SQL = (
    "SELECT t.id, t.user_id, (t.last_used_at IS NULL OR t.last_used_at < %s)"  # noqa: S608
    f" FROM {_TOKEN} t JOIN {User._meta.db_table} u ON u.id = t.user_id"
    " WHERE t.token_hash = %s AND t.revoked_at IS NULL AND u.is_active"
)


def _token_shaped(raw: str) -> bool:
    return bool(raw) and raw.startswith(TOKEN_PREFIX) and len(raw) <= 200


def _usable_token(raw: str):
    """The active token of an active user for this raw token, as a query (None for a string
    that cannot be one): the rules `access_token_find` and `access_token_identify` share."""
    if not _token_shaped(raw):
        return None
    return AccessToken.objects.filter(
        token_hash=_hash_token(raw), revoked_at__isnull=True, user__is_active=True
    )


def _token_used(token_id: int, last_used_at: datetime | None) -> datetime | None:
    """Record a token's use, once a minute at most; returns its new `last_used_at`."""
    now = timezone.now()
    if last_used_at is None or last_used_at < now.replace(second=0, microsecond=0):
        AccessToken.objects.filter(pk=token_id).update(last_used_at=now)
        return now
    return last_used_at


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
    access_token_id: int  # the access token it was minted with
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
        access_token_id=token.access_token_id,
        expire_time=token.expire_time,
        model=token.model,
        setup=token.setup,
        field_mask=tuple(token.field_mask),
    )


def _ephemeral_use(
    token_id: int, *, user_id: int, now: datetime, new_session: bool, access_token_id: int | None
) -> int:
    """Check the token again and count a use for a new session, in one conditional UPDATE:
    it holds the token's row lock until the start commits (`ephemeral_token_revoke` waits
    for it, then sees the new lease), and its own conditions are checked again on the row
    as it is once locked. The minter's revocation takes the user's row lock, which the
    caller holds. Raises EphemeralTokenRefused; returns the id of the minter."""
    valid = Q(pk=token_id, user_id=user_id, revoked_at__isnull=True, expire_time__gt=now)
    if new_session:
        valid &= Q(new_session_expire_time__gt=now) & (Q(uses=0) | Q(uses_count__lt=F("uses")))
    if access_token_id is not None:
        valid &= Q(access_token_id=access_token_id)
    minter = AccessToken.objects.filter(pk=OuterRef("access_token_id"), revoked_at__isnull=True)
    changes: dict = {"last_used_at": now}
    if new_session:
        changes["uses_count"] = F("uses_count") + 1
    if not EphemeralToken.objects.filter(valid, Exists(minter)).update(**changes):
        token = (  # refused: read it to say why
            EphemeralToken.objects.select_related("user", "access_token")
            .filter(pk=token_id, user_id=user_id)
            .first()
        )
        _ephemeral_check(token, now=now, new_session=new_session)
        raise EphemeralTokenRefused(EphemeralTokenRefused.INVALID)  # not that minter's
    if access_token_id is None:
        access_token_id = (
            EphemeralToken.objects.filter(pk=token_id).values_list("access_token_id", flat=True)
        ).get()
    return access_token_id


# --- session leases ---------------------------------------------------------------------------

LEASE_STALE_AFTER = timedelta(seconds=90)  # holders renew every 30 s (assistant/live/lease.py)
WORKER = f"{socket.gethostname()}:{os.getpid()}"[:120]
# A session reserves its live time in slices: each is charged to the day when it is reserved
# and trimmed to the actual use at the next renewal (every lease.RENEW_SECONDS, 30 s) or at
# release, so parallel sessions draw from one remainder and none runs past it. A slice is a
# little longer than the renewal interval: a renewal that comes late does not end the session.
USAGE_SLICE_SECONDS = 40.0


@dataclass(frozen=True)
class LeaseGrant:
    """A taken lease and the conversation it records into. `remaining_seconds` is the slice
    reserved for it: how long it may run before its next renewal."""

    conversation_id: object
    lease_id: object
    upstream_handle: str
    next_turn: int
    remaining_seconds: float
    resumed: bool
    standing_instructions: str = ""  # the user's own (User.standing_instructions)


def _usage_by_day(start: datetime, end: datetime) -> dict[date, float]:
    """The seconds from start to end, split at local midnights (TIME_ZONE)."""
    spans: dict[date, float] = {}
    cursor = start
    while cursor < end:
        day = timezone.localdate(cursor)
        midnight = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
        until = min(end, midnight)
        spans[day] = spans.get(day, 0.0) + (until - cursor).total_seconds()
        cursor = until
    return spans


def _usage_add(user_id: int, changes: dict[date, float], now: datetime) -> None:
    """Add seconds (negative: a refund) to the user's ledger rows, one upsert a day (a new
    row never starts below zero). The caller holds the user's row lock."""
    for params in _usage_rows(user_id, changes, now):
        with connection.cursor() as cursor:
            cursor.execute(_USAGE_ADD_SQL, params)


def _usage_rows(user_id: int, changes: dict[date, float], now: datetime) -> list[list]:
    """_USAGE_ADD_SQL's parameters for each day with seconds to add."""
    return [
        [user_id, day, max(0.0, seconds), now, seconds]
        for day, seconds in changes.items()
        if abs(seconds) >= 1e-6
    ]


# PostgreSQL and SQLite (3.24+) both take this upsert on the (user, day) unique constraint.
_USAGE_ADD_SQL = (
    "INSERT INTO assistant_dailyusage (user_id, day, seconds, updated_at)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, day) DO UPDATE"
    " SET seconds = assistant_dailyusage.seconds + %s, updated_at = excluded.updated_at"
)


def _usage_settle(lease: SessionLease, now: datetime) -> None:
    """Charge the lease's use since it was last settled, day by day, and trim what it had
    reserved in advance: the ledger then holds exactly what it used."""
    _usage_add(lease.user_id, _usage_unsettled(lease, now), now)
    SessionLease.objects.filter(pk=lease.pk).update(
        settled_at=now, reserved_seconds=0, reserved_day=None
    )


def _usage_unsettled(lease: SessionLease, now: datetime) -> dict[date, float]:
    """The lease's use since it was last settled, day by day, less what it reserved."""
    changes = _usage_by_day(lease.settled_at or now, now)
    if lease.reserved_seconds and lease.reserved_day is not None:
        day = lease.reserved_day
        changes[day] = changes.get(day, 0.0) - lease.reserved_seconds
    return changes


def _usage_slice(user: User, used: float) -> float:
    """The next slice of the user's day when `used` seconds of it are charged. Raises
    DailyAllowanceUsed when nothing is left."""
    daily = user.effective_daily_seconds()
    left = daily - used
    if left < 0.5:  # less than half a second is no session
        raise DailyAllowanceUsed(daily)
    return min(USAGE_SLICE_SECONDS, left)


def _usage_reserve(user: User, lease_id, now: datetime) -> float:
    """Reserve the next slice of the user's day for a lease (charged now). Raises
    DailyAllowanceUsed when nothing is left."""
    slice_ = _usage_slice(user, selectors.user_live_seconds_today(user_id=user.pk, now=now))
    today = timezone.localdate(now)
    _usage_add(user.pk, {today: slice_}, now)
    SessionLease.objects.filter(pk=lease_id).update(
        settled_at=now, reserved_seconds=slice_, reserved_day=today
    )
    return slice_


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
    access_token_id: int | None = None,
) -> LeaseGrant:
    """Check the user's quotas and credentials, take a lease with the first slice of the
    day's remaining live time, start or reopen the conversation.

    Raises ConversationNotFound, ConversationBusy, TooManySessions, DailyAllowanceUsed,
    EphemeralTokenRefused or CredentialRevoked (the owner deactivated, or the access token
    the session is opened with revoked since the socket connected). `take_over` drops a
    fresh lease still held on the conversation (its holder was told to end and did not, or
    its worker died less than LEASE_STALE_AFTER ago), charging its use so far. A session
    opened with an ephemeral token counts one of its uses (none to resume a conversation),
    in this transaction: a refusal counts none.

    A new conversation's start is five statements (tests/live/test_connect_queries.py): the
    user's row lock, which serialises a user's starts, so each read after it sees the
    starts before; one read of all the checks need (`selectors.session_start_facts`); the
    conversation; the lease with its slice; the ledger. An ephemeral token adds its
    conditional use; a resumption reads and reopens its conversation instead.
    """
    user = _locked_user(user_id)  # serialises a user's starts
    if not user.is_active:
        raise CredentialRevoked(control.REASON_DEACTIVATED)
    now = timezone.now()
    presented = access_token_id  # checked below; an ephemeral token's minter is checked here
    if ephemeral_token_id is not None:
        access_token_id = _ephemeral_use(
            ephemeral_token_id,
            user_id=user_id,
            now=now,
            new_session=conversation_id is None,
            access_token_id=access_token_id,
        )
        presented = None
    stale_before = now - LEASE_STALE_AFTER
    facts = selectors.session_start_facts(
        user_id=user_id, now=now, stale_before=stale_before, access_token_id=presented
    )
    if not facts.token_active:
        raise CredentialRevoked(control.REASON_TOKEN_REVOKED)
    if facts.stale_leases:
        # A stale lease's worker died: its reservation stands for the use it could not report.
        SessionLease.objects.filter(user_id=user_id, heartbeat_at__lt=stale_before).delete()
    resume = None
    if conversation_id is not None:
        resume = selectors.conversation_to_resume(
            user_id=user_id, conversation_id=conversation_id, stale_before=stale_before
        )
        if resume is None:
            raise ConversationNotFound
        if resume.held:
            if not take_over:
                raise ConversationBusy
            holders = SessionLease.objects.filter(
                conversation_id=resume.conversation_id, heartbeat_at__gte=stale_before
            )
            for holder in holders:
                _usage_settle(holder, now)
            holders.delete()
            # Read again: the holders are gone and their use is charged.
            facts = selectors.session_start_facts(
                user_id=user_id, now=now, stale_before=stale_before
            )
    limit = user.effective_max_sessions()
    if facts.fresh_leases >= limit:
        raise TooManySessions(limit)
    slice_ = _usage_slice(user, facts.seconds_today or 0.0)
    today = timezone.localdate(now)
    lease = {
        "user_id": user_id,
        "worker": WORKER,
        "client_kind": client_kind,
        "heartbeat_at": now,
        "ephemeral_token_id": ephemeral_token_id,
        "access_token_id": access_token_id,
        "settled_at": now,
        "reserved_seconds": slice_,
        "reserved_day": today,
    }
    if resume is None and connection.vendor == "postgresql":
        conversation = {
            "user_id": user_id,
            "model": model,
            "voice": voice,
            "client_kind": client_kind,
            "started_at": now,
        }
        conversation_id, lease_id = _start_postgresql(conversation, lease, slice_)
        next_turn, handle, resumed = 1, "", False
    else:
        if resume is None:
            conversation_id = conversation_start(
                user_id=user_id, model=model, voice=voice, client_kind=client_kind
            ).pk
            next_turn, handle, resumed = 1, "", False
        else:
            conversation_id = resume.conversation_id
            conversation_reopen(conversation_id=conversation_id)
            next_turn, resumed = resume.last_turn + 1, True
            # Gemini refuses a model change on resumption: then start a fresh upstream session.
            handle = resume.resumption_handle if resume.model == model else ""
        lease_id = SessionLease.objects.create(conversation_id=conversation_id, **lease).pk
        _usage_add(user_id, {today: slice_}, now)
    return LeaseGrant(
        conversation_id=conversation_id,
        lease_id=lease_id,
        upstream_handle=handle,
        next_turn=next_turn,
        remaining_seconds=slice_,
        resumed=resumed,
        # A Gemini client brings its own systemInstruction; the web UI's user has these.
        standing_instructions=user.standing_instructions if client_kind == "web" else "",
    )


# What a start reads of its user, in the model's field order (`User.from_db` takes them so).
_START_FIELDS = [
    f
    for f in User._meta.concrete_fields
    if f.attname in ("id", "is_active", "max_sessions", "daily_seconds", "standing_instructions")
]
_USER_LOCK_SQL = (
    f"SELECT {', '.join(f.column for f in _START_FIELDS)}"  # noqa: S608
    f" FROM {User._meta.db_table} WHERE id = %s"
)


def _locked_user(user_id: int) -> User:
    """The user's row, locked for this transaction (`FOR UPDATE`; SQLite's write transaction
    is the lock there), with the fields a start reads: one statement written once (the ORM
    compiled it per start, a tenth of a start's CPU). Raises User.DoesNotExist."""
    sql = _USER_LOCK_SQL + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        row = cursor.fetchone()
    if row is None:
        raise User.DoesNotExist(f"user {user_id}")
    values = [f.to_python(v) for f, v in zip(_START_FIELDS, row, strict=True)]
    return User.from_db(connection.alias, [f.attname for f in _START_FIELDS], values)


def _row_sql(model, values: dict) -> tuple[str, list]:
    """`INSERT INTO <model's table> (<every column>) VALUES (…)`: `values`, and each other
    field's default, prepared as the ORM would save them (so a field added to the model
    needs no change here)."""
    fields = model._meta.local_concrete_fields
    given = [values[f.attname] if f.attname in values else f.get_default() for f in fields]
    row = [f.get_db_prep_save(value, connection) for f, value in zip(fields, given, strict=True)]
    return _insert_sql(model), row


@functools.cache
def _insert_sql(model) -> str:
    """The INSERT's text for every column of `model` (PostgreSQL's quoting), made once."""
    fields = model._meta.local_concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608


def _start_postgresql(conversation: dict, lease: dict, slice_: float) -> tuple:
    """A new conversation, its lease and the day's ledger charge in one statement (every
    session's start; the user's row lock is held). Returns (conversation id, lease id)."""
    conversation_id, lease_id = uuid.uuid4(), uuid.uuid4()
    conversation_sql, conversation_row = _row_sql(
        Conversation, {**conversation, "id": conversation_id}
    )
    lease_sql, lease_row = _row_sql(
        SessionLease,
        {
            **lease,
            "id": lease_id,
            "conversation_id": conversation_id,
            "started_at": lease["heartbeat_at"],
        },
    )
    [usage] = _usage_rows(
        lease["user_id"], {lease["reserved_day"]: slice_}, lease["heartbeat_at"]
    )  # a slice is at least half a second (_usage_slice)
    sql = f"WITH c AS ({conversation_sql}), l AS ({lease_sql}) {_USAGE_ADD_SQL}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*conversation_row, *lease_row, *usage])
    return conversation_id, lease_id


@transaction.atomic
def lease_renew(*, lease_id, user_id: int) -> float:
    """Heartbeat: check what the session stands on, charge its use since the last renewal
    and reserve its next slice of the user's day (shared by all their sessions). Returns the
    seconds reserved: the session may run that long before renewing again.

    Raises CredentialRevoked (the owner deactivated, the access or ephemeral token behind it
    revoked: the backstop for a control event the channel layer lost), ConversationBusy
    (the lease is gone: another socket took the conversation over, or it went stale) or
    DailyAllowanceUsed (the day is used up; the use so far is charged).
    """
    user = User.objects.select_for_update().get(pk=user_id)
    now = timezone.now()
    lease = (
        SessionLease.objects.select_related("access_token", "ephemeral_token")
        .filter(pk=lease_id, user_id=user_id)
        .first()
    )
    if lease is None:
        raise ConversationBusy
    SessionLease.objects.filter(pk=lease_id).update(heartbeat_at=now)
    if not user.is_active:
        raise CredentialRevoked(control.REASON_DEACTIVATED)
    if lease.access_token is not None and lease.access_token.revoked_at is not None:
        raise CredentialRevoked(control.REASON_TOKEN_REVOKED)
    if lease.ephemeral_token is not None and lease.ephemeral_token.revoked_at is not None:
        raise CredentialRevoked(control.REASON_EPHEMERAL_REVOKED)
    _usage_settle(lease, now)
    return _usage_reserve(user, lease_id, now)


@transaction.atomic
def lease_release(
    *, lease_id, conversation_id, reason: str, failed: bool, user_id: int | None = None
) -> None:
    """Charge the lease's actual use (its reservation trimmed), drop it and end its
    conversation (failed or ended, with the reason). `user_id`, when the caller knows the
    lease's owner, saves looking it up."""
    status = Conversation.Status.FAILED if failed else Conversation.Status.ENDED
    if user_id is None:
        user_id = SessionLease.objects.filter(pk=lease_id).values_list("user_id", flat=True).first()
    if user_id is not None and connection.vendor == "postgresql":
        _release_postgresql(lease_id, user_id, conversation_id, reason, status)
        return
    if user_id is not None:
        User.objects.select_for_update().filter(pk=user_id).values_list("pk").first()
        lease = SessionLease.objects.filter(pk=lease_id, user_id=user_id).first()  # locked
        if lease is not None:
            now = timezone.now()
            _usage_add(user_id, _usage_unsettled(lease, now), now)  # settled, then dropped
            SessionLease.objects.filter(pk=lease.pk).delete()
    conversation_end(conversation_id=conversation_id, reason=reason, status=status)


_LEASE, _USER = SessionLease._meta.db_table, User._meta.db_table
# Every session's close, so two statements without the ORM on PostgreSQL: the user's row lock
# (taken by the subquery before the lease row is read) with the lease dropped, returning what
# it had settled and reserved; then the conversation ended with the day's ledger upsert.
_RELEASE_SQL = f"""
DELETE FROM {_LEASE} WHERE id = %s AND user_id = (SELECT id FROM {_USER} WHERE id = %s FOR UPDATE)
RETURNING settled_at, reserved_seconds, reserved_day
"""  # noqa: S608 (table names from the models)
_END_SQL = (
    f"UPDATE {_CONVERSATION} SET status = %s, end_reason = %s, ended_at = %s"  # noqa: S608
    " WHERE id = %s AND status = 'active'"
)
_END_WITH_USAGE_SQL = f"WITH ended AS ({_END_SQL} RETURNING 1) {_USAGE_ADD_SQL}"


def _release_postgresql(lease_id, user_id: int, conversation_id, reason: str, status) -> None:
    """lease_release's work (inside its transaction) in two round trips."""
    now = timezone.now()
    end = [status, reason[:200], now, conversation_id]
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL, [lease_id, user_id])
        row = cursor.fetchone()
        rows = []
        if row is not None:
            settled = SessionLease(settled_at=row[0], reserved_seconds=row[1], reserved_day=row[2])
            rows = _usage_rows(user_id, _usage_unsettled(settled, now), now)
        if not rows:
            cursor.execute(_END_SQL, end)
            return
        first, *later = rows  # later: the days after, for a session that ran past midnight
        cursor.execute(_END_WITH_USAGE_SQL, [*end, *first])
        for params in later:
            cursor.execute(_USAGE_ADD_SQL, params)
