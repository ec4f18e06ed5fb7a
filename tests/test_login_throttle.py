"""Login protection on every sign-in form (allauth's, the admin's, password reset): failures
throttled per address and per (address, account), a soft per-account limit that never slows
the owner's known address, a clear refusal (429 and the message in the form), the client's
address from X-Forwarded-For only through trusted proxies, and the counts shared across
workers and restarts on Redis."""

import os
import re
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.test import RequestFactory

from assistant import throttle
from tests.live.conftest import Daphne, database_url, thread_emulator  # noqa: F401 (fixture)
from tests.test_settings import PROD_SECRET, run_django, settings_value

pytestmark = pytest.mark.django_db

RIGHT = "correct horse battery staple"
A, B, C = "203.0.113.10", "198.51.100.20", "192.0.2.30"


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """A cache of this test's own (never cache.clear(): on Redis that flushes the db)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"throttle-test-{uuid.uuid4().hex}",
        }
    }


def allauth_login(client, login, password, address=A):
    return client.post(
        "/accounts/login/", {"login": login, "password": password}, REMOTE_ADDR=address
    )


def admin_login(client, username, password, address=A):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def signed_in(response) -> bool:
    return response.status_code == 302


def refused(response) -> bool:
    if response.status_code != 429:
        return False
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.content.decode()
    return True


# --- per (address, account): the guesser's address only ------------------------------------------


def test_five_wrong_passwords_lock_that_address_out_of_that_account_only(client, alice, bob):
    for _ in range(5):
        response = allauth_login(client, "alice", "wrong")
        assert response.status_code == 200
        assert not refused(response)
    # The sixth attempt is not even checked: the right password is refused too.
    assert refused(allauth_login(client, "alice", RIGHT))
    # Another account from that address, and that account from another address, still work.
    assert signed_in(allauth_login(client, "bob", RIGHT))
    client.logout()
    assert signed_in(allauth_login(client, "alice", RIGHT, address=B))


def test_the_refusal_is_in_the_form_with_the_wait(client, alice):
    for _ in range(5):
        allauth_login(client, "alice", "wrong")
    response = allauth_login(client, "alice", "wrong")
    assert refused(response)
    page = response.content.decode()
    assert re.search(r'class="form-errors" role="alert">.*Too many failed sign-in', page, re.S)
    assert re.search(r"wait \d+ (seconds|minutes)", page)
    assert 'name="login"' in page  # the form is still there


def test_username_and_email_share_one_account_budget(client, alice):
    for login in ("alice", "ALICE@example.com", "alice", "alice@example.com", " Alice"):
        assert not refused(allauth_login(client, login, "wrong"))
    assert refused(allauth_login(client, "alice@example.com", RIGHT))


def test_a_success_clears_that_address_and_account(client, alice):
    for _ in range(4):
        allauth_login(client, "alice", "wrong")
    assert signed_in(allauth_login(client, "alice", RIGHT))
    client.logout()
    for _ in range(4):
        assert not refused(allauth_login(client, "alice", "wrong"))


def test_the_count_decays_over_the_window(client, alice, monkeypatch, settings):
    now = [1_000_000.0]
    monkeypatch.setattr(throttle.time, "time", lambda: now[0])
    for _ in range(5):
        allauth_login(client, "alice", "wrong")
    assert refused(allauth_login(client, "alice", RIGHT))
    now[0] += settings.PASTRA_LOGIN_WINDOW_SECONDS  # half the failures' weight has faded
    assert signed_in(allauth_login(client, "alice", RIGHT))


# --- the admin login, under the same throttle ----------------------------------------------------


def test_admin_login_is_throttled_with_a_429_and_the_message(client, staff):
    for _ in range(5):
        response = admin_login(client, "stella", "wrong")
        assert response.status_code == 200
    response = admin_login(client, "stella", RIGHT)
    assert refused(response)
    assert 'class="errornote"' in response.content.decode()
    assert signed_in(admin_login(client, "stella", RIGHT, address=B))  # not locked elsewhere


def test_admin_and_allauth_failures_count_together(client, staff):
    for _ in range(3):
        admin_login(client, "stella", "wrong")
    for _ in range(2):
        allauth_login(client, "stella", "wrong")
    assert refused(admin_login(client, "stella", RIGHT))
    assert refused(allauth_login(client, "stella", RIGHT))


def test_a_right_password_for_a_non_staff_account_is_no_failure(client, alice):
    for _ in range(6):
        response = admin_login(client, "alice", RIGHT)
        assert response.status_code == 200
        assert not refused(response)


# --- per address ---------------------------------------------------------------------------------


def test_an_address_guessing_many_accounts_is_locked_out(client, alice, settings):
    settings.PASTRA_LOGIN_FAILURES_PER_ADDRESS = 8
    for n in range(8):
        assert not refused(allauth_login(client, f"nobody{n}", "wrong"))
    assert refused(allauth_login(client, "alice", RIGHT))  # an account it never tried
    assert signed_in(allauth_login(client, "alice", RIGHT, address=B))


# --- per account, soft: strangers are slowed, the owner's known address is not -------------------


def test_an_account_under_attack_slows_strangers_but_not_the_owners_known_address(
    client, alice, settings
):
    assert signed_in(allauth_login(client, "alice", RIGHT, address=C))  # C is now known
    client.logout()
    for n in range(10):  # ten addresses, one failure each: no per-address rule fires
        assert not refused(allauth_login(client, "alice", "wrong", address=f"10.9.0.{n}"))
    # Under attack: one attempt per 10 s from all unknown addresses together.
    assert not refused(allauth_login(client, "alice", "wrong", address="10.9.1.1"))
    response = allauth_login(client, "alice", RIGHT, address="10.9.1.2")
    assert refused(response)
    assert int(response["Retry-After"]) <= settings.PASTRA_LOGIN_SLOW_SECONDS
    # The owner, from the address that signed in before, is let straight in.
    assert signed_in(allauth_login(client, "alice", RIGHT, address=C))
    client.logout()
    assert signed_in(allauth_login(client, "alice", RIGHT, address=C))


def test_the_slow_down_passes_after_its_spacing(client, alice, settings):
    settings.PASTRA_LOGIN_SLOW_SECONDS = 1
    for n in range(10):
        allauth_login(client, "alice", "wrong", address=f"10.9.0.{n}")
    assert not refused(allauth_login(client, "alice", "wrong", address="10.9.1.1"))
    assert refused(allauth_login(client, "alice", RIGHT, address="10.9.1.2"))
    time.sleep(1.1)
    assert signed_in(allauth_login(client, "alice", RIGHT, address="10.9.1.2"))


# --- password reset requests ---------------------------------------------------------------------


def test_password_reset_requests_are_limited_per_email_and_per_address(client, alice, mailoutbox):
    def ask(email, address=A):
        return client.post("/accounts/password/reset/", {"email": email}, REMOTE_ADDR=address)

    for _ in range(5):
        assert ask("alice@example.com").status_code == 302
    assert ask("alice@example.com", address=B).status_code == 429  # per email, anywhere
    assert len(mailoutbox) == 5
    for n in range(20):
        assert ask(f"x{n}@example.com", address=C).status_code == 302
    assert ask("another@example.com", address=C).status_code == 429  # per address


# --- the client's address ------------------------------------------------------------------------


def meta(remote, xff=None):
    extra = {"REMOTE_ADDR": remote}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **extra)


def test_x_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.PASTRA_TRUSTED_PROXIES = []
    assert throttle.client_address(meta("10.0.0.2", "1.2.3.4")) == "10.0.0.2"


@pytest.mark.parametrize(
    ("remote", "xff", "expected"),
    [
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        # the client wrote its own entries first: the proxy's appended one wins
        ("10.0.0.2", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
        # two trusted proxies in a row
        ("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
        # not from a trusted proxy: the header is the client's own claim
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        # garbage where the client's address should be: counted on the proxy
        ("10.0.0.2", "1.2.3.4, not-an-ip", "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "[2001:db8::1]", "2001:db8::1"),
        ("10.0.0.2", "::ffff:198.51.100.7", "198.51.100.7"),
    ],
)
def test_x_forwarded_for_through_trusted_proxies(settings, remote, xff, expected):
    settings.PASTRA_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert throttle.client_address(meta(remote, xff)) == expected


def test_a_spoofed_forwarded_for_does_not_escape_the_throttle(client, alice, settings):
    settings.PASTRA_TRUSTED_PROXIES = ["10.0.0.2"]
    for n in range(5):
        client.post(
            "/accounts/login/",
            {"login": "alice", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, {A}",
        )
    assert refused(allauth_login(client, "alice", RIGHT, address=A))


def test_ipv6_addresses_count_per_64(client, alice):
    for n in range(5):
        allauth_login(client, "alice", "wrong", address=f"2001:db8:1:2::{n + 1}")
    assert refused(allauth_login(client, "alice", RIGHT, address="2001:db8:1:2:ffff::1"))
    assert signed_in(allauth_login(client, "alice", RIGHT, address="2001:db8:1:3::1"))


def test_trusted_proxies_setting_is_parsed_strictly():
    result = run_django(
        ["check"], DEBUG="0", SECRET_KEY=PROD_SECRET, PASTRA_UPSTREAM_URL="ws://e:1",
        PASTRA_TRUSTED_PROXIES="10.0.0.0/8,nginx",
    )  # fmt: skip
    assert result.returncode != 0
    assert "PASTRA_TRUSTED_PROXIES: 'nginx'" in result.stderr
    assert settings_value("PASTRA_TRUSTED_PROXIES", PASTRA_TRUSTED_PROXIES="10.0.0.0/8, ::1") == [
        "10.0.0.0/8",
        "::1",
    ]
    assert settings_value("PASTRA_TRUSTED_PROXIES") == []


def test_the_cache_is_redis_with_redis_url_and_per_process_otherwise():
    redis = settings_value("CACHES", REDIS_URL="redis://h:6379/2", PASTRA_CACHE_PREFIX="p1")
    assert redis["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert redis["default"]["LOCATION"] == "redis://h:6379/2"
    assert redis["default"]["KEY_PREFIX"] == "p1"
    local = settings_value("CACHES")
    assert local["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    # allauth's login limits (the name-wide lock-out among them) are the throttle's job now.
    limits = settings_value("ACCOUNT_RATE_LIMITS")
    assert limits["login_failed"] is None
    assert limits["login"] is None


def test_a_cache_outage_lets_the_attempt_through(client, alice, staff, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    for method in ("get", "get_many", "add", "set", "incr", "delete_many"):
        monkeypatch.setattr(throttle.cache, method, down)
    assert throttle.login_check(meta(A), "alice") is None
    throttle.login_failed(meta(A), "alice")
    assert not refused(allauth_login(client, "alice", "wrong"))
    assert signed_in(allauth_login(client, "alice", RIGHT))
    client.logout()
    assert signed_in(admin_login(client, "stella", RIGHT))
    assert "cache unavailable" in caplog.text


# --- on the real Redis: shared by workers, kept across restarts ----------------------------------


def redis_db3() -> str:
    url = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit((url.scheme, url.netloc, "/3", "", ""))


@pytest.fixture
def redis_prefix():
    import redis

    prefix = f"pastra-test-throttle-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(redis_db3())
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.redis
def test_two_cache_clients_on_redis_share_the_counts(settings, redis_prefix):
    def worker():
        from django.core.cache.backends.redis import RedisCache

        return RedisCache(redis_db3(), {"KEY_PREFIX": redis_prefix})

    first, second = worker(), worker()
    request = meta(A)
    settings.PASTRA_TRUSTED_PROXIES = []
    original = throttle.cache
    try:
        throttle.cache = first
        for _ in range(5):
            assert throttle.login_check(request, "nobody-here") is None
            throttle.login_failed(request, "nobody-here")
        throttle.cache = second  # another worker, or this one after a restart
        refusal = throttle.login_check(request, "nobody-here")
        assert refusal is not None
        assert refusal.reason == "address-account"
        assert throttle.login_check(meta(B), "nobody-here") is None
    finally:
        throttle.cache = original
        first.close()
        second.close()


class Site:
    """A daphne worker; sign-in attempts over HTTP as a browser makes them."""

    def __init__(self, server: Daphne) -> None:
        self.server = server

    def login(self, login: str, password: str) -> httpx.Response:
        with httpx.Client(base_url=self.server.base_url, timeout=10) as http:
            page = http.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
            return http.post(
                "/accounts/login/",
                data={"login": login, "password": password, "csrfmiddlewaretoken": token},
            )


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_daphne_workers_share_the_throttle_and_a_restart_keeps_it(
    thread_emulator,  # noqa: F811 (the imported fixture)
    tmp_path,
    redis_prefix,
    alice,
):
    env = {
        "PASTRA_UPSTREAM_URL": thread_emulator.url,
        "REDIS_URL": redis_db3(),
        "PASTRA_CACHE_PREFIX": redis_prefix,
        "PASTRA_CHANNEL_PREFIX": redis_prefix,
    }
    one = Daphne(env, tmp_path, name="throttle-1")
    two = Daphne(env, tmp_path, name="throttle-2")
    try:
        for _ in range(5):
            assert Site(one).login("alice", "wrong").status_code == 200
        refusal = Site(two).login("alice", RIGHT)
        assert refusal.status_code == 429
        assert "Too many failed sign-in attempts" in refusal.text
        one.stop()
        restarted = Daphne(env, tmp_path, name="throttle-1b")
        try:
            assert Site(restarted).login("alice", RIGHT).status_code == 429
        finally:
            restarted.stop()
    finally:
        one.stop()
        two.stop()
        if "postgres" in database_url():  # let their backends exit before the DB is dropped
            time.sleep(1.0)
