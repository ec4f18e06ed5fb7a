"""The database round trips of a connect (socket open to the session ready) and of a close, on
each path. A connect: one credential lookup, then one write transaction that takes the lease;
a close: the final record, then one transaction that settles and drops the lease
(docs/connect-profile.md). A change that adds a query fails here, with the statements listed.
On PostgreSQL the record and the close are fewer statements, written without the ORM."""

import datetime as dt
import re
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.test import Client
from django.utils import timezone

from assistant import services
from assistant.models import AccessToken, Conversation, SessionLease
from assistant.routing import websocket_urlpatterns
from assistant.tools import mcp_tools
from tests.live.conftest import GEMINI_WS, MODEL, gemini_client, gemini_recv, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

CONSTRAINED = (
    "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
)
_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(?:assistant_|django_)?(\w+)"?')
# A new session's write transaction: the user's row lock, one read of all the checks need
# (leases, today's ledger, the token), the conversation, the lease with its slice (and
# today's ledger row, checked by `ledger` below).
START = ["SELECT user", "SELECT livesession", "INSERT conversation", "INSERT livesession"]
# PostgreSQL: the conversation, the lease and the ledger's upsert are one WITH statement
# (services._start_postgresql), checked by `ledger` below like the upsert alone.
START_POSTGRESQL = ["SELECT user", "SELECT livesession"]


def start() -> list[str]:
    """A new session's write transaction on this database (its ledger upsert left out)."""
    return START_POSTGRESQL if connection.vendor == "postgresql" else START


def _outer_table(sql: str) -> str:
    """The table a statement reads or writes (not its subqueries'), or its first table."""
    tables = list(_TABLE.finditer(sql))
    for match in tables:
        if sql.count("(", 0, match.start()) == sql.count(")", 0, match.start()):
            return match[1]
    return tables[0][1] if tables else "?"


class Statements:
    """Every SQL statement on any thread (the live path runs its own database threads),
    grouped as the database sees them: each autocommit statement alone, a transaction's
    statements together. BEGIN is left out (SQLite writes it, psycopg implies it)."""

    def __init__(self) -> None:
        self.units: list[list[str]] = []
        self._open: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    def executed(self, connection, sql: str) -> None:
        if sql.startswith("BEGIN"):
            return
        described = f"{sql.split(None, 1)[0]} {_outer_table(sql)}"
        with self._lock:
            if connection.in_atomic_block:
                if id(connection) not in self._open:
                    self._open[id(connection)] = []
                    self.units.append(self._open[id(connection)])
                self._open[id(connection)].append(described)
            else:
                self.units.append([described])

    def committed(self, connection) -> None:
        with self._lock:
            self._open.pop(id(connection), None)

    def take(self) -> list[list[str]]:
        with self._lock:
            units, self.units = self.units, []
            return units


def settle_database_threads() -> None:
    """Let whatever an earlier test left on the live path's database threads finish first:
    once every thread is in this barrier at once, every job queued before it is done."""
    from assistant.live import db

    if db._executor is not None:
        everyone = threading.Barrier(db.THREADS, timeout=10)
        for job in [db._executor.submit(everyone.wait) for _ in range(db.THREADS)]:
            job.result()


@pytest.fixture
def statements(monkeypatch):
    settle_database_threads()
    # The MCP server table is read once per PASTRA_MCP_CACHE_SECONDS per process, not per
    # connect: read it now, so the connects below show only their own statements.
    mcp_tools.clear_cache()
    mcp_tools.configs_for_user(0)
    seen = Statements()
    execute = CursorWrapper._execute_with_wrappers
    commit = BaseDatabaseWrapper.commit

    def recorded_execute(self, sql, params, many, executor):
        seen.executed(self.db, sql)
        return execute(self, sql, params, many, executor)

    def recorded_commit(self):
        seen.committed(self)
        return commit(self)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", recorded_execute)
    monkeypatch.setattr(BaseDatabaseWrapper, "commit", recorded_commit)
    return seen


def ledger(units, *, first_today: bool) -> list[list[str]]:
    """`units` with the last statement of the write transaction checked and dropped: today's
    ledger row is one upsert (created by the day's first session, added to by the others)."""
    write = units[-1]
    assert write[-1] in ("INSERT dailyusage", "WITH dailyusage"), units
    return [*units[:-1], write[:-1]]


async def gemini_session(path: str, headers=None, token: str = ""):
    comm = gemini_client(token, path=path, headers=headers)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}"}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    return comm


async def test_gemini_path_one_token_read_then_one_write(alice, alice_token, emulator, statements):
    first = await gemini_session(GEMINI_WS, token=alice_token)
    # The token's first use this minute is recorded (the token list shows it to the minute).
    assert ledger(statements.take(), first_today=True) == [
        ["SELECT accesstoken"],
        ["UPDATE accesstoken"],
        start(),
    ]
    used = (await AccessToken.objects.aget()).last_used_at
    statements.take()

    second = await gemini_session(GEMINI_WS, token=alice_token)
    units = ledger(statements.take(), first_today=False)
    again = (await AccessToken.objects.aget()).last_used_at
    # Written again only if the minute turned in between (tests/test_services.py).
    recorded = [] if again == used else [["UPDATE accesstoken"]]
    assert again == used or again.replace(second=0, microsecond=0) > used
    assert units == [["SELECT accesstoken"], *recorded, start()]
    for comm in (first, second):
        await comm.disconnect()


async def test_ephemeral_token_one_read_then_one_write_counting_its_use(
    alice, emulator, statements
):
    def mint() -> str:
        pat, _ = services.access_token_create(user=alice, name="backend")
        now = timezone.now()
        return services.ephemeral_token_create(
            access_token=pat,
            uses=1,
            expire_time=now + dt.timedelta(minutes=30),
            new_session_expire_time=now + dt.timedelta(seconds=60),
        )[1]

    raw = await sync_to_async(mint)()
    statements.take()
    comm = await gemini_session(CONSTRAINED, headers=[(b"authorization", f"Token {raw}".encode())])
    lock, *rest = start()
    assert ledger(statements.take(), first_today=True) == [
        ["SELECT ephemeraltoken"],
        [lock, "UPDATE ephemeraltoken", *rest],  # the use, counted under the conditions
    ]
    await comm.disconnect()


async def web_session(cookie: str, **start):
    headers = [
        (b"host", b"localhost:8000"),
        (b"origin", b"http://localhost:8000"),
        (b"cookie", cookie.encode()),
    ]
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/", headers=headers)
    connected, code = await comm.connect()
    assert connected, code
    await comm.send_json_to({"type": "start", **start})
    got = await receive_until(comm, lambda e: e["type"] == "session" and e["state"] == "ready")
    return comm, got.events[-1]


async def test_web_path_session_and_user_read_then_one_write(alice, emulator, statements):
    client = Client()
    await sync_to_async(client.force_login)(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    statements.take()

    comm, ready = await web_session(cookie)
    assert ledger(statements.take(), first_today=True) == [
        ["SELECT session"],  # the cookie's session and its user (Channels' AuthMiddleware)
        ["SELECT user"],
        start(),
    ]
    await comm.disconnect()  # returns once the session has released its lease
    assert not await SessionLease.objects.aexists()
    statements.take()  # the first session's final writes

    # Resuming reads its conversation (with its last turn and whether it is held) and
    # reopens it instead of creating one.
    comm, again = await web_session(cookie, conversation=ready["conversation"])
    assert again["resumed"] is True
    lock, facts, *_ = START
    assert ledger(statements.take(), first_today=False) == [
        ["SELECT session"],
        ["SELECT user"],
        [lock, facts, "SELECT conversation", "UPDATE conversation", "INSERT livesession"],
    ]
    await comm.disconnect()
    conversation = await Conversation.objects.aget(pk=ready["conversation"])
    assert conversation.status == Conversation.Status.ENDED


async def test_a_close_settles_drops_and_ends_in_one_transaction(
    alice, alice_token, emulator, statements
):
    """The close path: the final record (the session's events), then one transaction under
    the user's lock that charges the use, drops the lease and ends the conversation."""
    comm = await gemini_session(GEMINI_WS, token=alice_token)
    statements.take()
    await comm.disconnect()  # returns once the session has released its lease
    units = statements.take()
    if connection.vendor == "postgresql":
        # services._release_postgresql: the lock taken by the lease's DELETE, then the
        # conversation ended by the ledger's upsert (one WITH statement).
        assert units == [["WITH conversation"], ["DELETE livesession", "WITH dailyusage"]], units
    else:
        release = [u for u in units if u[0] == "SELECT user"]
        settle = ["SELECT livesession", "INSERT dailyusage", "DELETE livesession"]
        assert release == [["SELECT user", *settle, "UPDATE conversation"]], units
    assert not await SessionLease.objects.aexists()
    conversation = await Conversation.objects.aget()
    assert conversation.status == Conversation.Status.ENDED
