"""The live side of a session's lease: take it (quotas and credentials checked; a conversation
still held elsewhere is taken over after its holder was told to end), renew it (the next
slice of the day's live time, and a check that its credential still stands), release it,
and say what each refusal means to the client (an EndKind with a human message).

The database work is in assistant/services.py (`lease_acquire`, `lease_renew`,
`lease_release`), run off Channels' single database thread by `live_db`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from assistant import control, metrics, services
from assistant.errors import (
    ConversationBusy,
    ConversationNotFound,
    CredentialRevoked,
    DailyAllowanceUsed,
    EphemeralTokenRefused,
    TooManySessions,
)
from assistant.live import control_hub
from assistant.live.db import live_db
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini.errors import token_refusal

logger = logging.getLogger(__name__)

RENEW_SECONDS = 30.0  # well inside services.LEASE_STALE_AFTER
SUPERSEDE_EVENT = "live.superseded"  # handled by the consumers' `live_superseded`
SUPERSEDE_WAIT_SECONDS = 5.0

_acquire = live_db(services.lease_acquire)
_renew = live_db(services.lease_renew)
arelease = live_db(services.lease_release)


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def refusal(error: Exception) -> SessionEnd:
    """What a lease refusal means to the client."""
    if isinstance(error, TooManySessions):
        limit = error.limit
        return SessionEnd(
            EndKind.TOO_MANY_SESSIONS,
            f"You already have {limit} live session{'' if limit == 1 else 's'} open, "
            "your limit. Close one and try again.",
        )
    if isinstance(error, DailyAllowanceUsed):
        return SessionEnd(
            EndKind.DAILY_LIMIT,
            f"You have used today's {_minutes(error.daily_seconds)} of live time. "
            "It resets at midnight.",
        )
    if isinstance(error, ConversationNotFound):
        return SessionEnd(EndKind.NOT_FOUND)
    if isinstance(error, EphemeralTokenRefused):
        return token_refusal(error.reason, error.uses)
    if isinstance(error, CredentialRevoked):
        return SessionEnd(EndKind.SIGNED_OUT, error.message)
    raise TypeError(f"not a lease refusal: {error!r}")


async def acquire(
    *,
    user_id: int,
    model: str,
    voice: str,
    client_kind: str,
    conversation_id=None,
    ephemeral_token_id: int | None = None,
    access_token_id: int | None = None,
) -> services.LeaseGrant:
    """Take a lease. A conversation held by another live session: its holder is told to end
    (`live.superseded`, on whichever worker) and we wait up to SUPERSEDE_WAIT_SECONDS for its
    final flush to release the lease, then take it over. Raises SessionEnd on a refusal."""
    deadline = time.monotonic() + SUPERSEDE_WAIT_SECONDS
    take_over = signalled = False
    while True:
        try:
            return await _acquire(
                user_id=user_id,
                model=model,
                voice=voice,
                client_kind=client_kind,
                conversation_id=conversation_id,
                take_over=take_over,
                ephemeral_token_id=ephemeral_token_id,
                access_token_id=access_token_id,
            )
        except ConversationBusy:
            if not signalled:
                signalled = True
                await _group_send(
                    control.conversation_group(conversation_id), {"type": SUPERSEDE_EVENT}
                )
            take_over = time.monotonic() >= deadline
            if not take_over:
                await asyncio.sleep(0.2)
        except (
            TooManySessions,
            DailyAllowanceUsed,
            ConversationNotFound,
            EphemeralTokenRefused,
            CredentialRevoked,
        ) as error:
            raise refusal(error) from None


async def arenew(*, lease_id, user_id: int) -> float:
    """Renew the lease; returns the seconds reserved until the next renewal. Raises
    SessionEnd: the day used up (DAILY_LIMIT), the credential gone (SIGNED_OUT), the lease
    gone (SUPERSEDED: taken over by another socket, or stale)."""
    try:
        return await _renew(lease_id=lease_id, user_id=user_id)
    except ConversationBusy:
        raise SessionEnd(EndKind.SUPERSEDED) from None
    except (DailyAllowanceUsed, CredentialRevoked) as error:
        raise refusal(error) from None


async def release(lease_id, conversation_id, end: SessionEnd, user_id: int | None = None) -> None:
    """Drop the lease and end the conversation (failed unless the end was clean). Never
    raises: a failure is logged and counted (a lease not renewed goes stale anyway)."""
    try:
        await arelease(
            lease_id=lease_id,
            conversation_id=conversation_id,
            reason=end.message,
            failed=not end.clean,
            user_id=user_id,
        )
    except Exception:
        logger.exception("releasing the lease failed")
        metrics.ERRORS.labels("lease").inc()


async def _group_send(group: str, message: dict) -> None:
    try:
        await control_hub.send(group, message)
    except Exception:
        logger.warning("channel layer unavailable: %s not signalled", group, exc_info=True)
        metrics.ERRORS.labels("channel_layer").inc()
