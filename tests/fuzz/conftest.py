"""Fuzz fixtures: one production-like Pastra (the Dockerfile's server: the uvicorn launcher,
`DEBUG=0`, the thread-run emulator upstream) for the whole fuzz session, its log watched for
escaped exceptions, and the two hypothesis profiles.

Profiles (`PASTRA_FUZZ`): `quick` (the default, CI: a few hundred cases over the three
sockets, derandomized so CI runs the same cases every time) and `long` (`make fuzz`: random,
thousands of cases, failures kept in .pytest_cache/hypothesis and replayed first next time).

Async under hypothesis: each test is a plain (sync) function with `@given`; every example
runs its coroutine on one event loop that lives as long as the test (`loop.run_until_complete`),
so a socket may outlive an example (the admin test keeps one web session open) while each
example's own sockets are opened and closed inside it. Database checks run between the
examples, outside the loop, with the sync ORM."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests.live.conftest import (  # noqa: F401  (fixtures, re-exported for tests/fuzz)
    MODEL,
    ROOT,
    TEXT_MODEL,
    database_url,
    free_port,
    make_token,
    thread_emulator,
)

# --- profiles -------------------------------------------------------------------------------

# Examples per test; tests/fuzz/test_*.py scale them (the cheap admin socket gets fewer).
QUICK_EXAMPLES = 100
LONG_EXAMPLES = 2000

_common = {
    "deadline": None,  # a case is a real network round trip: timing is not the property
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,  # the server and users are shared on purpose
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    "print_blob": True,
}
hypothesis_settings.register_profile(
    "quick", max_examples=QUICK_EXAMPLES, derandomize=True, database=None, **_common
)
hypothesis_settings.register_profile(
    "long",
    max_examples=LONG_EXAMPLES,
    database=DirectoryBasedExampleDatabase(str(ROOT / ".pytest_cache" / "hypothesis")),
    **_common,
)
PROFILE = os.environ.get("PASTRA_FUZZ", "quick")
if PROFILE not in ("quick", "long"):
    raise pytest.UsageError(f"PASTRA_FUZZ={PROFILE!r}: use quick or long")
hypothesis_settings.load_profile(PROFILE)


def examples(share: float) -> int:
    """This test's number of examples: `share` of the profile's per-test count."""
    return max(10, int(hypothesis_settings().max_examples * share))


# --- the server -----------------------------------------------------------------------------


def production_command(port: int) -> list[str]:
    """The Dockerfile's CMD on this port: fuzz what production runs (docs/asgi-server.md)."""
    if "exec python -m pastra_site.serve " in (ROOT / "Dockerfile").read_text():
        return [
            sys.executable, "-m", "pastra_site.serve", "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
        *production_daphne_flags(), "pastra_site.asgi:application",
    ]  # fmt: skip


def production_daphne_flags() -> list[str]:
    """The WebSocket flags of the Dockerfile's daphne command: fuzz what production runs."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"exec daphne (.*?) pastra_site\.asgi:application", text)
    assert match, "the Dockerfile's CMD no longer runs daphne"
    words = shlex.split(match.group(1))
    flags, skip = [], False
    for index, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word in ("-b", "-p", "--bind", "--port"):
            skip = True
            continue
        if word.startswith(("--websocket", "--ping")):
            flags.append(word)
            if index + 1 < len(words) and not words[index + 1].startswith("-"):
                flags.append(words[index + 1])
                skip = True
    return flags


# DEBUG=0 refuses the dev secret; the test process signs its session cookies with this one too.
SECRET_KEY = "fuzz-not-a-secret-" + "x" * 50

# Log lines that mean an exception escaped, or the server logged an error (plain or JSON).
ESCAPED = re.compile(
    r"Traceback \(most recent call last\)|Exception inside application|Unhandled Error"
    r"|Exception in ASGI application"
    r"|^\S+ \S+ (?:ERROR|CRITICAL) |\"level\": \"(?:ERROR|CRITICAL)\"",
    re.MULTILINE,
)


class FuzzServer:
    """Pastra as production runs it (`production_command`), one per fuzz session."""

    def __init__(self, upstream: str, folder) -> None:
        self.port = free_port()
        self.log = folder / f"server-fuzz-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "pastra_site.settings",
                "DEBUG": "0",
                "SECRET_KEY": SECRET_KEY,
                "PASTRA_HTTPS": "0",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{self.port}",
                "DATABASE_URL": database_url(),
                "PASTRA_UPSTREAM_URL": upstream,
                "PASTRA_MODEL": MODEL,
                "PASTRA_ALLOWED_MODELS": f"{MODEL},{TEXT_MODEL}",
                # Hundreds of sessions a run: the day's allowance is not what is fuzzed here.
                "PASTRA_DAILY_SECONDS_PER_USER": "86400",
                "LOG_LEVEL": "INFO",
                "LOG_FORMAT": "plain",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            production_command(self.port),
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._seen = 0
        self._wait()

    def _wait(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                if self.healthz() == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def healthz(self) -> int:
        with urllib.request.urlopen(self.base_url + "/healthz", timeout=5) as response:  # noqa: S310
            return response.status

    def new_log(self) -> str:
        """The log written since the last call."""
        self._log_file.flush()
        text = self.log.read_text(errors="replace")
        new, self._seen = text[self._seen :], len(text)
        return new

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def fuzz_server(django_db_setup, thread_emulator, tmp_path_factory):  # noqa: F811
    server = FuzzServer(thread_emulator.url, tmp_path_factory.mktemp("fuzz"))
    yield server
    server.stop()
    if "postgres" in database_url():  # let its backends exit before the test DB is dropped
        time.sleep(1.0)


@pytest.fixture
def server(fuzz_server):
    """The shared server, its log read up to now (a test sees only its own log lines); after
    the test, its sessions' closes are let finish before the test database is flushed (a
    close still writing while the flush truncates can deadlock with it)."""
    fuzz_server.new_log()
    yield fuzz_server
    settle(fuzz_server)


def settle(server, seconds: float = 15.0) -> None:
    """Wait until the server holds no session: no lease left and every conversation ended
    (a close deletes the lease first, then ends the conversation)."""
    from assistant.models import Conversation, SessionLease

    deadline = time.monotonic() + seconds
    while SessionLease.objects.exists() or Conversation.objects.filter(ended_at=None).exists():
        if server.proc.poll() is not None or time.monotonic() > deadline:
            return  # the test's own checks say what went wrong; the flush goes ahead
        time.sleep(0.02)


@pytest.fixture
def loop():
    """One event loop per test: every example runs on it (see the module docstring)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


# --- between examples -------------------------------------------------------------------------


def health_problem(server, user) -> str:
    """After one case: "" when the server answers /healthz, logged no escaped exception, and
    the user's live sessions are all gone (lease, hence slot, freed within 5 s)."""
    from assistant.models import SessionLease

    if server.proc.poll() is not None:
        return "the server died"
    if (status := server.healthz()) != 200:
        return f"/healthz answered {status}"
    deadline = time.monotonic() + 5.0
    while SessionLease.objects.filter(user=user).exists():
        if time.monotonic() > deadline:
            return "a session lease outlived its socket by 5 s (the slot is not freed)"
        time.sleep(0.02)
    if escaped := check_log(server):
        return f"the server logged an error:\n{escaped}"
    return ""


# `PASTRA_FUZZ_SURVEY=FILE`: record every failing case as a JSON line in FILE and go on,
# instead of failing and shrinking the first one (to list the distinct failures at once).
SURVEY = os.environ.get("PASTRA_FUZZ_SURVEY", "")


def verdict(server, user, outcome, *, what: str, stop_sent: bool = False) -> None:
    """The property of every case: a clear end or a working session, and a healthy server."""
    problems = [
        p for p in (outcome.problem(stop_sent=stop_sent), health_problem(server, user)) if p
    ]
    if not problems:
        return
    if SURVEY:
        import json

        with open(SURVEY, "a") as file:
            line = {"what": what[:600], "problems": problems, "seen": repr(outcome.seen[-4:])[:600]}
            file.write(json.dumps(line) + "\n")
        return
    raise AssertionError("; ".join(problems))


def check_log(server) -> str:
    """Error lines (and what follows them) in the server's new log, or ""."""
    text = server.new_log()
    hits = [m.start() for m in ESCAPED.finditer(text)]
    if not hits:
        return ""
    return text[max(0, hits[0] - 200) : hits[0] + 3000]


@pytest.fixture
def login_cookie(settings):
    """`login_cookie(user)`: a `Cookie` header value for a session the server accepts (one
    client per user: logging another user in on the same client would end the first one's
    session)."""
    from django.test import Client

    settings.SECRET_KEY = SECRET_KEY

    def login(user) -> str:
        client = Client()
        client.force_login(user)
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}"

    return login
