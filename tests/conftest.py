"""Shared fixtures: named people, fast hashing, and service gates (skip, or fail in CI)."""

import os
import shutil
import uuid

import httpx
import pytest

from assistant.tools import http, ssrf
from tests.http_seam import HttpRoutes, Resolver

REQUIRE_SERVICES = os.environ.get("PASTRA_REQUIRE_SERVICES", "") == "1"


def pytest_configure(config):
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Login throttle and rate-limit counters live in the cache: each test gets an empty one
    of its own in this process, so no test (and no earlier run, as on a shared Redis) leaves
    counts for the next. Tests of the Redis cache build their own clients
    (tests/test_login_throttle.py); never `cache.clear()` a shared Redis."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-{uuid.uuid4().hex}",
        }
    }


def _service_missing(marker: str) -> str | None:
    if marker == "redis" and not os.environ.get("REDIS_URL"):
        return "needs a Redis server: set REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
    if marker == "postgres" and not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if marker == "e2e" and not shutil.which("chromium"):
        return "needs Debian's chromium (apt-get install chromium)"
    return None


def pytest_runtest_setup(item):
    for marker in ("redis", "postgres", "e2e"):
        if item.get_closest_marker(marker) and (reason := _service_missing(marker)):
            if REQUIRE_SERVICES:
                pytest.fail(f"PASTRA_REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
            pytest.skip(reason)


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, **extra):
        extra.setdefault("password", "correct horse battery staple")
        return django_user_model.objects.create_user(username=username, **extra)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice", email="alice@example.com")


@pytest.fixture
def bob(make_user):
    return make_user("bob", email="bob@example.com")


@pytest.fixture
def staff(make_user):
    return make_user("stella", email="stella@example.com", is_staff=True, is_superuser=True)


@pytest.fixture(autouse=True)
def http_routes(monkeypatch):
    """No test reaches the internet: every HTTP request through the seam must be routed."""
    routes = HttpRoutes()
    monkeypatch.setattr(http, "_transport", httpx.MockTransport(routes.handle))
    yield routes
    assert not routes.unexpected, f"unexpected HTTP requests: {routes.unexpected}"


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    """No test resolves a real name through the SSRF guard."""
    fake = Resolver()
    monkeypatch.setattr(ssrf, "_resolve", fake)
    yield fake
    assert not fake.unexpected, f"unexpected DNS lookups: {fake.unexpected}"


@pytest.fixture(scope="session")
def close_worker_thread_connections(django_db_setup):
    """Before the test database is dropped: close the connections held by asgiref's database
    thread (the async ORM in tests) and by the live path's own threads (assistant/live/db.py),
    which pytest-django does not know about. Requested by the suites that use them (live,
    deploy, the pool tests), so a run without them never sets up a database for it."""
    yield
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    from assistant.live import db

    asyncio.run(sync_to_async(connections.close_all)())
    if db._executor is not None:
        for future in [db._executor.submit(connections.close_all) for _ in range(db.THREADS)]:
            future.result()
        db._executor.shutdown(wait=True)
        db._executor = None
