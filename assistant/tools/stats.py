"""What the recorded calls say about each tool: calls, error rate and p95 duration, read from
the `tool_result` events of the conversation log (the last WINDOW_DAYS days, at most MAX_ROWS
of the latest results), for the tool registry in /admin/."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.utils import timezone

WINDOW_DAYS = 30
MAX_ROWS = 50_000


@dataclass(frozen=True)
class ToolStats:
    calls: int = 0
    errors: int = 0
    cancelled: int = 0
    p95_ms: int | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def p95(values: list[int]) -> int | None:
    """The nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def tool_stats(now: dt.datetime | None = None) -> dict[str, ToolStats]:
    """{tool name: its figures}; a cancelled call counts as cancelled, not as a call."""
    from assistant.models import ConversationEvent

    since = (now or timezone.now()) - dt.timedelta(days=WINDOW_DAYS)
    rows = (
        ConversationEvent.objects.filter(
            kind=ConversationEvent.Kind.TOOL_RESULT, created_at__gte=since
        )
        .order_by("-created_at")
        .values_list("text", "data", "duration_ms")[:MAX_ROWS]
    )
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    cancelled: dict[str, int] = {}
    durations: dict[str, list[int]] = {}
    for name, data, duration_ms in rows:
        data = data if isinstance(data, dict) else {}
        response = data.get("response")
        if isinstance(response, dict) and response.get("error") == "cancelled":
            cancelled[name] = cancelled.get(name, 0) + 1
            continue
        if data.get("will_continue"):
            continue  # a partial result: its call is counted once, at its last one
        calls[name] = calls.get(name, 0) + 1
        if not data.get("ok"):
            errors[name] = errors.get(name, 0) + 1
        if duration_ms is not None:
            durations.setdefault(name, []).append(duration_ms)
    return {
        name: ToolStats(
            calls=calls.get(name, 0),
            errors=errors.get(name, 0),
            cancelled=cancelled.get(name, 0),
            p95_ms=p95(durations.get(name, [])),
        )
        for name in set(calls) | set(cancelled)
    }
