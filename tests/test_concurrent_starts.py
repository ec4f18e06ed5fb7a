"""One user's session starts at the same moment, on as many database connections: the user's
row lock serialises them (services.lease_acquire), so the concurrency limit, the day's
remainder and an ephemeral token's uses hold exactly, however the starts interleave."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from assistant import selectors, services
from assistant.errors import DailyAllowanceUsed, EphemeralTokenRefused, TooManySessions
from assistant.models import EphemeralToken, SessionLease

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STARTS = 8


def start_at_once(count: int, **kwargs) -> list:
    """`count` threads call lease_acquire together; returns each one's grant or error."""
    ready = threading.Barrier(count, timeout=10)
    results: list = [None] * count

    def start(i: int) -> None:
        try:
            ready.wait()
            results[i] = services.lease_acquire(model="m", voice="", client_kind="sdk", **kwargs)
        except Exception as error:
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def kinds(results) -> dict[str, int]:
    counted: dict[str, int] = {}
    for result in results:
        name = type(result).__name__
        counted[name] = counted.get(name, 0) + 1
    return counted


def test_the_concurrency_limit_holds(alice):
    alice.max_sessions = 3
    alice.save()
    results = start_at_once(STARTS, user_id=alice.pk)
    assert kinds(results) == {"LeaseGrant": 3, "TooManySessions": STARTS - 3}
    assert all(isinstance(r, services.LeaseGrant | TooManySessions) for r in results)
    assert SessionLease.objects.filter(user=alice).count() == 3
    assert selectors.user_live_seconds_today(user_id=alice.pk) == pytest.approx(
        3 * services.USAGE_SLICE_SECONDS
    )


def test_the_days_remainder_holds(alice):
    alice.max_sessions, alice.daily_seconds = 100, 100
    alice.save()
    results = start_at_once(STARTS, user_id=alice.pk)
    # 40 + 40 + 20 seconds reserved: the day is used up, whichever started first.
    assert kinds(results) == {"LeaseGrant": 3, "DailyAllowanceUsed": STARTS - 3}
    assert sorted(r.remaining_seconds for r in results if isinstance(r, services.LeaseGrant)) == [
        20.0,
        40.0,
        40.0,
    ]
    assert all(isinstance(r, services.LeaseGrant | DailyAllowanceUsed) for r in results)
    assert selectors.user_live_seconds_today(user_id=alice.pk) == pytest.approx(100)


def test_an_ephemeral_tokens_uses_hold(alice):
    alice.max_sessions = 100
    alice.save()
    pat, _ = services.access_token_create(user=alice, name="backend")
    now = timezone.now()
    token, _ = services.ephemeral_token_create(
        access_token=pat,
        uses=2,
        expire_time=now + dt.timedelta(minutes=30),
        new_session_expire_time=now + dt.timedelta(minutes=1),
    )
    results = start_at_once(
        STARTS, user_id=alice.pk, ephemeral_token_id=token.pk, access_token_id=pat.pk
    )
    assert kinds(results) == {"LeaseGrant": 2, "EphemeralTokenRefused": STARTS - 2}
    refused = [r for r in results if isinstance(r, EphemeralTokenRefused)]
    assert {r.reason for r in refused} == {EphemeralTokenRefused.USED_UP}
    assert EphemeralToken.objects.get().uses_count == 2
    leases = SessionLease.objects.filter(ephemeral_token=token)
    assert set(leases.values_list("access_token_id", flat=True)) == {pat.pk}
