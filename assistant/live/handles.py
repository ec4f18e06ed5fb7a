"""Pastra's own session-resumption handles for Gemini-path clients: signed, bound to a user
and a conversation, expiring like Google's (2 h). Google's handles never leave the server
(they live in Conversation.resumption_handle)."""

from __future__ import annotations

import uuid

from django.core import signing

SALT = "pastra.live.resumption"
MAX_AGE_SECONDS = 2 * 3600


def issue(*, user_id: int, conversation_id) -> str:
    return signing.dumps({"u": user_id, "c": str(conversation_id)}, salt=SALT, compress=False)


def read(handle: str, *, user_id: int) -> uuid.UUID | None:
    """The conversation a handle resumes, or None if it is forged, expired or another user's."""
    if not handle or len(handle) > 400:
        return None
    try:
        data = signing.loads(handle, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user_id:
        return None
    try:
        return uuid.UUID(str(data.get("c")))
    except ValueError:
        return None
