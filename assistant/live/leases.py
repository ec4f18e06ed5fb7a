"""The database side of a live session's lifetime: quota checks, the LiveSession lease
(counts concurrent sessions across workers), the conversation it records into.

A lease not renewed for STALE_AFTER (its worker died) no longer counts. Holders renew every
RENEW_SECONDS from a session-owned timer, never per message.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from assistant import selectors, services
from assistant.live.db import live_db
from assistant.live.errors import EndKind, SessionEnd
from assistant.models import Conversation, ConversationEvent, LiveSession, User

STALE_AFTER = timedelta(seconds=90)
RENEW_SECONDS = 30.0
WORKER = f"{socket.gethostname()}:{os.getpid()}"[:120]


class ConversationBusy(Exception):
    """Another live session (maybe on another worker) holds this conversation."""


@dataclass(frozen=True)
class Begin:
    conversation_id: object
    lease_id: object
    upstream_handle: str
    next_turn: int
    remaining_seconds: float
    resumed: bool


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


@transaction.atomic
def session_begin(
    *,
    user_id: int,
    model: str,
    voice: str,
    client_kind: str,
    conversation_id=None,
    take_over: bool = False,
) -> Begin:
    """Check quotas, take a lease, start or reopen the conversation.

    Raises SessionEnd (TOO_MANY_SESSIONS, DAILY_LIMIT, NOT_FOUND) or ConversationBusy.
    `take_over` drops a fresh lease still held on the conversation (its holder was told
    to end and did not, or its worker died less than STALE_AFTER ago).
    """
    user = User.objects.select_for_update().get(pk=user_id)  # serialises a user's starts
    now = timezone.now()
    fresh = LiveSession.objects.filter(user_id=user_id, heartbeat_at__gte=now - STALE_AFTER)
    LiveSession.objects.filter(user_id=user_id, heartbeat_at__lt=now - STALE_AFTER).delete()
    conversation = None
    if conversation_id is not None:
        conversation = Conversation.objects.filter(pk=conversation_id, user_id=user_id).first()
        if conversation is None:
            raise SessionEnd(EndKind.NOT_FOUND)
        holders = fresh.filter(conversation=conversation)
        if holders.exists():
            if not take_over:
                raise ConversationBusy
            holders.delete()
    limit = user.effective_max_sessions()
    if fresh.count() >= limit:
        raise SessionEnd(
            EndKind.TOO_MANY_SESSIONS,
            f"You already have {limit} live session{'' if limit == 1 else 's'} open, "
            "your limit. Close one and try again.",
        )
    daily = user.effective_daily_seconds()
    used = selectors.user_live_seconds_today(user_id=user_id)
    if used >= daily:
        raise SessionEnd(
            EndKind.DAILY_LIMIT,
            f"You have used today's {_minutes(daily)} of live time. It resets at midnight.",
        )
    if conversation is None:
        conversation = services.conversation_start(
            user_id=user_id, model=model, voice=voice, client_kind=client_kind
        )
        next_turn, handle, resumed = 1, "", False
    else:
        services.conversation_reopen(conversation_id=conversation.pk)
        last = (
            conversation.events.exclude(kind=ConversationEvent.Kind.SESSION).aggregate(
                m=Max("turn")
            )["m"]
            or 0
        )
        next_turn, resumed = last + 1, True
        # Gemini refuses a model change on resumption: then start a fresh upstream session.
        handle = conversation.resumption_handle if conversation.model == model else ""
    lease = LiveSession.objects.create(
        user_id=user_id,
        conversation=conversation,
        worker=WORKER,
        client_kind=client_kind,
        heartbeat_at=now,
    )
    return Begin(
        conversation_id=conversation.pk,
        lease_id=lease.pk,
        upstream_handle=handle,
        next_turn=next_turn,
        remaining_seconds=daily - used,
        resumed=resumed,
    )


def lease_renew(*, lease_id, user_id: int) -> float:
    """Heartbeat; returns the user's live seconds left today (across all their sessions)."""
    LiveSession.objects.filter(pk=lease_id).update(heartbeat_at=timezone.now())
    user = User.objects.get(pk=user_id)
    return user.effective_daily_seconds() - selectors.user_live_seconds_today(user_id=user_id)


def session_finish(*, lease_id, conversation_id, reason: str, failed: bool) -> None:
    LiveSession.objects.filter(pk=lease_id).delete()
    services.conversation_end(
        conversation_id=conversation_id,
        reason=reason,
        status=Conversation.Status.FAILED if failed else Conversation.Status.ENDED,
    )


def user_is_active(*, user_id: int) -> bool:
    return User.objects.filter(pk=user_id, is_active=True).exists()


asession_begin = live_db(session_begin)
alease_renew = live_db(lease_renew)
asession_finish = live_db(session_finish)
