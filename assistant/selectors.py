"""Every read of Pastra's tables that is more than a one-liner. `<entity>_<query>`."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from assistant.models import (
    AccessToken,
    Conversation,
    ConversationEvent,
    DailyUsage,
    EphemeralToken,
    User,
)

TEXT_KINDS = (
    ConversationEvent.Kind.USER_TEXT,
    ConversationEvent.Kind.INPUT_TRANSCRIPT,
    ConversationEvent.Kind.MODEL_TEXT,
    ConversationEvent.Kind.OUTPUT_TRANSCRIPT,
)


def conversation_list_for_user(*, user: User, query: str = "") -> QuerySet[Conversation]:
    """A user's own conversations, newest first; `query` matches title or any transcript text."""
    qs = Conversation.objects.filter(user=user)
    if query := query.strip():
        matching = ConversationEvent.objects.filter(
            conversation=OuterRef("pk"), kind__in=TEXT_KINDS, text__icontains=query
        )
        qs = qs.filter(Q(title__icontains=query) | Exists(matching))
    return qs.order_by("-started_at")


def conversation_get_for_user(*, user: User, conversation_id) -> Conversation:
    """Raises Conversation.DoesNotExist for another user's conversation (views turn it into 404)."""
    return Conversation.objects.get(pk=conversation_id, user=user)


def conversation_events(*, conversation: Conversation) -> QuerySet[ConversationEvent]:
    return conversation.events.order_by("seq")


def conversation_recent_turns(*, conversation: Conversation, limit: int) -> list[ConversationEvent]:
    """The last `limit` events of a conversation's clean transcript (no usage or session
    events), oldest first: what the talk page shows when the conversation is continued."""
    Kind = ConversationEvent.Kind
    recent = conversation.events.exclude(kind__in=[Kind.USAGE, Kind.SESSION]).order_by("-seq")
    return list(reversed(recent[:limit]))


def conversation_export(*, conversation: Conversation) -> dict:
    """A self-contained JSON-able record of one conversation and its events."""
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "user": conversation.user.get_username(),
        "model": conversation.model,
        "voice": conversation.voice,
        "client_kind": conversation.client_kind,
        "status": conversation.status,
        "end_reason": conversation.end_reason,
        "started_at": conversation.started_at.isoformat(),
        "ended_at": conversation.ended_at.isoformat() if conversation.ended_at else None,
        "seconds_used": round(conversation.seconds_used, 3),
        "usage": {
            "prompt_tokens": conversation.prompt_tokens,
            "response_tokens": conversation.response_tokens,
            "total_tokens": conversation.total_tokens,
        },
        "events": [
            {
                "seq": e.seq,
                "turn": e.turn,
                "kind": e.kind,
                "text": e.text,
                "data": e.data,
                "duration_ms": e.duration_ms,
                "created_at": e.created_at.isoformat(),
            }
            for e in conversation_events(conversation=conversation)
        ],
    }


def access_token_list_for_user(*, user: User) -> QuerySet[AccessToken]:
    return AccessToken.objects.filter(user=user).order_by("-created_at")


def ephemeral_token_list_for_user(*, user: User, now: datetime | None = None):
    """A user's ephemeral tokens that can still be used (not revoked, not expired), newest
    first, with the access token each was minted with. Spent ones are not listed: they
    expire within 20 hours anyway."""
    now = now or timezone.now()
    return (
        EphemeralToken.objects.filter(user=user, revoked_at__isnull=True, expire_time__gt=now)
        .select_related("access_token")
        .order_by("-created_at")
    )


def user_live_seconds_today(*, user_id: int, now: datetime | None = None) -> float:
    """Live seconds charged to the user today (the deployment's TIME_ZONE), from the ledger:
    what their sessions used, wherever they started, plus the slices open sessions have
    reserved and not used yet (trimmed at their next renewal)."""
    day = timezone.localdate(now or timezone.now())
    rows = DailyUsage.objects.filter(user_id=user_id, day=day)
    seconds = rows.values_list("seconds", flat=True).first()
    return max(0.0, float(seconds or 0.0))


def user_live_seconds_left(*, user: User, now: datetime | None = None) -> float:
    """What is left of the user's live time today (what the talk page shows)."""
    used = user_live_seconds_today(user_id=user.pk, now=now)
    return max(0.0, user.effective_daily_seconds() - used)


def conversation_active_count(*, user_id: int, stale_after: timedelta | None = None) -> int:
    qs = Conversation.objects.filter(user_id=user_id, status=Conversation.Status.ACTIVE)
    if stale_after is not None:
        qs = qs.filter(started_at__gte=timezone.now() - stale_after)
    return qs.count()


# --- what a session start decides on (read inside services.lease_acquire's transaction) -----
#
# In SQL, for the ORM's sake: they run under the user's row lock, where every millisecond
# serialises that user's starts, and building these subqueries with the ORM cost more CPU
# than the round trips they save (docs/connect-profile.md). Portable SQL (SQLite, PostgreSQL),
# values adapted by the backend's own operations.


@dataclass(frozen=True)
class StartFacts:
    """What a session start checks, read in one query under the user's row lock."""

    fresh_leases: int  # the user's live sessions (leases renewed within the stale limit)
    stale_leases: int  # leases of workers that died (to delete)
    seconds_today: float | None  # the ledger's row for today; None: no row yet
    token_active: bool  # the access token the session is opened with is not revoked


@dataclass(frozen=True)
class ResumeFacts:
    """A conversation to resume, as the start needs it."""

    conversation_id: object
    model: str
    resumption_handle: str
    held: bool  # a fresh lease is on it: another socket has it
    last_turn: int  # its last recorded turn (session events aside), 0 if none


# The tables are named in the models' Meta (SessionLease keeps its first name).
_FACTS_SQL = (
    "SELECT"
    " (SELECT COUNT(*) FROM assistant_livesession WHERE user_id = %s AND heartbeat_at >= %s),"
    " (SELECT COUNT(*) FROM assistant_livesession WHERE user_id = %s AND heartbeat_at < %s),"
    " (SELECT seconds FROM assistant_dailyusage WHERE user_id = %s AND day = %s),"
    " (SELECT COUNT(*) FROM assistant_accesstoken"
    " WHERE id = %s AND user_id = %s AND revoked_at IS NULL)"
)
_RESUME_SQL = (
    "SELECT c.model, c.resumption_handle,"
    " (SELECT COUNT(*) FROM assistant_livesession l"
    " WHERE l.conversation_id = c.id AND l.heartbeat_at >= %s),"
    " (SELECT MAX(e.turn) FROM assistant_conversationevent e"
    " WHERE e.conversation_id = c.id AND e.kind <> %s)"
    " FROM assistant_conversation c WHERE c.id = %s AND c.user_id = %s"
)


def session_start_facts(
    *, user_id: int, now: datetime, stale_before: datetime, access_token_id: int | None = None
) -> StartFacts:
    """The user's fresh and stale leases, today's ledger and the access token's state, in
    one query."""
    ops = connection.ops
    stale = ops.adapt_datetimefield_value(stale_before)
    day = ops.adapt_datefield_value(timezone.localdate(now))
    with connection.cursor() as cursor:
        cursor.execute(
            _FACTS_SQL,
            [user_id, stale, user_id, stale, user_id, day, access_token_id or 0, user_id],
        )
        fresh, stale_count, seconds, token = cursor.fetchone()
    return StartFacts(
        fresh_leases=fresh,
        stale_leases=stale_count,
        seconds_today=None if seconds is None else max(0.0, float(seconds)),
        token_active=access_token_id is None or token > 0,
    )


def conversation_to_resume(
    *, user_id: int, conversation_id, stale_before: datetime
) -> ResumeFacts | None:
    """The user's conversation (None if it is not theirs), whether a fresh lease holds it
    and its last turn, in one query."""
    pk = Conversation._meta.pk.get_db_prep_value(conversation_id, connection)
    stale = connection.ops.adapt_datetimefield_value(stale_before)
    with connection.cursor() as cursor:
        cursor.execute(_RESUME_SQL, [stale, ConversationEvent.Kind.SESSION.value, pk, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    model, handle, held, last_turn = row
    return ResumeFacts(
        conversation_id=Conversation._meta.pk.to_python(conversation_id),
        model=model,
        resumption_handle=handle,
        held=held > 0,
        last_turn=last_turn or 0,
    )
