"""Control events over the channel layer (low-rate only; media never rides the layer).

Every live session joins `user.<id>` and `conversation.<uuid>`; staff, `end_session` and
logout send `live.end` there, and whichever worker holds the session closes it.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from assistant.models import Conversation

logger = logging.getLogger(__name__)

END_EVENT = "live.end"  # handled by the live consumers' `live_end` method


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id) -> str:
    return f"conversation.{conversation_id}"


async def aend_sessions(
    *, user_id: int | None = None, conversation_id=None, reason: str = "Ended by an administrator"
) -> None:
    """Ask every worker to end the matching live sessions. Raises if the layer is down."""
    if (user_id is None) == (conversation_id is None):
        raise ValueError("give exactly one of user_id or conversation_id")
    group = user_group(user_id) if user_id is not None else conversation_group(conversation_id)
    await get_channel_layer().group_send(group, {"type": END_EVENT, "reason": reason[:120]})


def end_sessions(*, user_id: int | None = None, conversation_id=None, reason: str = "") -> int:
    """Sync wrapper for views, admin actions and commands. Returns how many active
    conversations it signalled (counted from the database before signalling)."""
    active = Conversation.objects.filter(status=Conversation.Status.ACTIVE)
    if user_id is not None:
        active = active.filter(user_id=user_id)
    else:
        active = active.filter(pk=conversation_id)
    count = active.count()
    async_to_sync(aend_sessions)(
        user_id=user_id,
        conversation_id=conversation_id,
        reason=reason or "Ended by an administrator",
    )
    return count
