"""Admin live view: staff watch a conversation's timeline grow while it is live, from any
worker (the page: assistant/admin.py `live_view`, static/staff/admin-live.js).

* The recorder (assistant/live/recorder.py) `broadcast`s each batch it has just written: one
  small `conversation.events` message per turn to `watch_group(conversation)`, best effort.
* `WatchConsumer` (`/ws/admin/conversations/<uuid>/`, session cookie + Origin check, staff
  with the view permission only, refused before accept otherwise) joins that group. It sends
  the events after `?after=<seq>` on connect, then, on every broadcast, the rows written since
  the last one it sent (read from the database: exact `seq`, no gap and no duplicate even if a
  broadcast is lost or arrives during the first read), and the conversation's status.

Watchers have their own group (not `control.conversation_group`), so the live sessions never
receive these messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from assistant.live.close_codes import WatchCode as CloseCode
from assistant.models import Conversation, ConversationEvent

logger = logging.getLogger(__name__)

WATCH_EVENT = "conversation.events"  # handled by WatchConsumer.conversation_events
MAX_BROADCAST_EVENTS = 40
MAX_BROADCAST_TEXT = 300
MAX_SENT_EVENTS = 500  # per message to the page (a long conversation's history comes in parts)
MAX_DATA_CHARS = 2000


def watch_group(conversation_id) -> str:
    return f"conversation.{conversation_id}.watch"


# --- the recorder's side ------------------------------------------------------------------------


def broadcast_message(conversation_id, events) -> dict:
    """The small message the recorder sends after writing a batch (services.EventRecord)."""
    return {
        "type": WATCH_EVENT,
        "conversation": str(conversation_id),
        "count": len(events),
        "events": [
            {"turn": e.turn, "kind": str(e.kind), "text": (e.text or "")[:MAX_BROADCAST_TEXT]}
            for e in list(events)[:MAX_BROADCAST_EVENTS]
        ],
    }


async def broadcast(conversation_id, events) -> None:
    """Raises if the layer is down: the caller (the recorder) decides how much that matters."""
    await get_channel_layer().group_send(
        watch_group(conversation_id), broadcast_message(conversation_id, events)
    )


# --- the watcher ----------------------------------------------------------------------------------


def _data_text(data) -> str:
    if not data:
        return ""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_DATA_CHARS else text[: MAX_DATA_CHARS - 1] + "…"


def event_row(event: ConversationEvent) -> dict:
    """One timeline row as the page shows it (the admin change view's columns)."""
    return {
        "seq": event.seq,
        "turn": event.turn,
        "time": event.created_at.strftime("%H:%M:%S"),
        "kind": event.kind,
        "label": event.get_kind_display(),
        "role": event.role,
        "text": event.text,
        "data": _data_text(event.data),
        "duration": "" if event.duration_ms is None else f"{event.duration_ms} ms",
    }


def _is_watcher(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("assistant.view_conversation")
    )


def _conversation_state(conversation_id) -> dict | None:
    row = (
        Conversation.objects.filter(pk=conversation_id)
        .values("status", "end_reason", "title")
        .first()
    )
    return row


def _events_after(conversation_id, after: int) -> list[dict]:
    events = ConversationEvent.objects.filter(
        conversation_id=conversation_id, seq__gt=after
    ).order_by("seq")[:MAX_SENT_EVENTS]
    return [event_row(e) for e in events]


class WatchConsumer(AsyncWebsocketConsumer):
    """`/ws/admin/conversations/<uuid>/`: server → page only (anything the page sends is
    ignored). Low rate: one database read per recorded turn per watcher."""

    sender: asyncio.Task | None = None
    wanted = False
    gone = False

    async def connect(self):
        self.joined = False
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CloseCode.UNAUTHENTICATED)
            return
        if not await database_sync_to_async(_is_watcher)(user):
            await self.close(code=CloseCode.FORBIDDEN)
            return
        try:
            self.conversation_id = uuid.UUID(self.scope["url_route"]["kwargs"]["conversation_id"])
        except ValueError:
            await self.close(code=CloseCode.NOT_FOUND)
            return
        self.group = watch_group(self.conversation_id)
        state = await database_sync_to_async(_conversation_state)(self.conversation_id)
        if state is None:
            await self.close(code=CloseCode.NOT_FOUND)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.last_seq = max(0, int((query.get("after") or ["0"])[0]))
        except ValueError:
            self.last_seq = 0
        # Join before the first read: whatever is written after it is announced to us.
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            self.joined = True
        except Exception:
            logger.warning("conv=%s watcher: channel layer unavailable", self.conversation_id)
        await self.accept()
        self._kick(state)

    def _kick(self, state: dict | None = None) -> None:
        """Send what is new, from a task beside the consumer's message loop: a disconnect
        (the page went away, or a frame over the limit closed the socket) is handled at
        once and stops a long catch-up between two of its parts."""
        self.wanted = True
        if self.sender is None or self.sender.done():
            self.sender = asyncio.create_task(
                self._sender(state), name=f"conv={self.conversation_id} watcher"
            )

    async def _sender(self, state: dict | None) -> None:
        try:
            while self.wanted and not self.gone:
                self.wanted = False
                await self._send_new(state)
                state = None
        except Exception:
            logger.exception("conv=%s watcher: sending failed", self.conversation_id)
            await self.close(code=1011)

    async def _send_new(self, state: dict | None) -> None:
        while not self.gone:
            events = await database_sync_to_async(_events_after)(
                self.conversation_id, self.last_seq
            )
            if state is None:
                state = await database_sync_to_async(_conversation_state)(self.conversation_id)
            if events:
                self.last_seq = events[-1]["seq"]
            await self.send(
                text_data=json.dumps(
                    {
                        "type": "events",
                        "events": events,
                        "status": (state or {}).get("status", "deleted"),
                        "end_reason": (state or {}).get("end_reason", ""),
                        "live": self.joined,
                    },
                    ensure_ascii=False,
                )
            )
            if len(events) < MAX_SENT_EVENTS:
                return
            state = None

    async def receive(self, text_data=None, bytes_data=None):
        pass

    async def conversation_events(self, event):
        self._kick()

    async def disconnect(self, code):
        self.gone = True
        if self.sender is not None and not self.sender.done():
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sender
        if self.joined:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(self.group, self.channel_name)
