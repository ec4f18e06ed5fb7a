"""Logging: one JSON object per line in production, with the session's ids attached.

`bind(conversation=..., user=...)` stores ids in a context variable; every record logged from
that task (and tasks it starts afterwards) carries them. Messages must never contain audio,
secrets or full transcripts: the ids are how a log line is tied to a record in the admin.
"""

import contextvars
import json
import logging
from datetime import UTC, datetime

_EMPTY: dict = {}
_context: contextvars.ContextVar[dict] = contextvars.ContextVar(
    "pastra_log_context", default=_EMPTY
)  # never mutated: bind() sets a copy


def bind(**ids) -> contextvars.Token:
    """Attach ids (conversation, user, client) to every later log record of this task."""
    return _context.set({**_context.get(), **{k: str(v) for k, v in ids.items() if v is not None}})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.ctx = _context.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "ctx", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if ctx := getattr(record, "ctx", None):
            line += " " + " ".join(f"{k}={v}" for k, v in ctx.items())
        return line
