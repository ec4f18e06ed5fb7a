"""The quota ledger (assistant.models.DailyUsage): live seconds are charged to the user's day
as they are used, in reserved slices renewed with the lease, so parallel sessions draw from
one remainder; usage outlives its conversations, time is charged to the day it is spent in
(TIME_ZONE), and staff see it per user."""

import datetime as dt
import zoneinfo

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from assistant import selectors, services
from assistant.errors import DailyAllowanceUsed
from assistant.live import lease
from assistant.models import Conversation, DailyUsage, SessionLease
from tests.live.conftest import receive_close, start_web, web_client, web_turn

pytestmark = pytest.mark.django_db(transaction=True)


def used(user) -> float:
    return selectors.user_live_seconds_today(user_id=user.pk)


def take(user, **kwargs) -> services.LeaseGrant:
    return services.lease_acquire(user_id=user.pk, model="m", voice="", client_kind="web", **kwargs)


def back_in_time(grant, seconds: float) -> None:
    """Pretend the lease's current slice started `seconds` ago."""
    row = SessionLease.objects.get(pk=grant.lease_id)
    SessionLease.objects.filter(pk=row.pk).update(
        settled_at=row.settled_at - dt.timedelta(seconds=seconds)
    )


def release(grant) -> None:
    services.lease_release(
        lease_id=grant.lease_id, conversation_id=grant.conversation_id, reason="", failed=False
    )


# --- the services ----------------------------------------------------------------------------


def test_a_session_reserves_a_slice_and_is_charged_its_actual_use(alice):
    grant = take(alice)
    assert grant.remaining_seconds == services.USAGE_SLICE_SECONDS
    assert used(alice) == pytest.approx(services.USAGE_SLICE_SECONDS)  # charged in advance
    back_in_time(grant, 12)
    release(grant)
    assert used(alice) == pytest.approx(12, abs=0.5)  # trimmed to the use


def test_parallel_sessions_draw_from_one_remainder(alice):
    alice.daily_seconds, alice.max_sessions = 50, 3
    alice.save()
    first, second = take(alice), take(alice)
    assert first.remaining_seconds == 40
    assert second.remaining_seconds == pytest.approx(10)  # what the first left
    assert used(alice) == pytest.approx(50)
    with pytest.raises(DailyAllowanceUsed):
        take(alice)
    back_in_time(first, 30)
    # The first renews: charged 30 s used, 10 s of its slice go back, and it reserves them.
    assert services.lease_renew(lease_id=first.lease_id, user_id=alice.pk) == pytest.approx(
        10, abs=0.5
    )
    back_in_time(second, 10)
    with pytest.raises(DailyAllowanceUsed):  # the second's day is used up
        services.lease_renew(lease_id=second.lease_id, user_id=alice.pk)
    assert used(alice) == pytest.approx(50, abs=0.5)


def test_deleting_a_conversation_refunds_nothing(alice):
    grant = take(alice)
    back_in_time(grant, 100)
    release(grant)
    before = used(alice)
    assert services.conversation_delete(user=alice, conversation_id=grant.conversation_id)
    assert used(alice) == before == pytest.approx(100, abs=0.5)


def test_time_is_charged_to_the_day_it_is_spent_in(alice, monkeypatch, settings):
    settings.TIME_ZONE = "Europe/Paris"  # the deployment's day, not UTC's
    grant = take(alice)
    midnight = dt.datetime(2026, 3, 10, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    SessionLease.objects.filter(pk=grant.lease_id).update(
        settled_at=midnight - dt.timedelta(seconds=25),
        reserved_seconds=40,
        reserved_day=dt.date(2026, 3, 9),
    )
    DailyUsage.objects.create(user=alice, day=dt.date(2026, 3, 9), seconds=40)
    monkeypatch.setattr(services.timezone, "now", lambda: midnight + dt.timedelta(seconds=15))
    release(grant)
    rows = dict(DailyUsage.objects.filter(user=alice).values_list("day", "seconds"))
    assert rows[dt.date(2026, 3, 9)] == pytest.approx(25)
    assert rows[dt.date(2026, 3, 10)] == pytest.approx(15)


def test_a_conversation_started_yesterday_is_charged_today(alice):
    grant = take(alice)
    release(grant)
    Conversation.objects.filter(pk=grant.conversation_id).update(
        started_at=timezone.now() - dt.timedelta(days=1)
    )
    DailyUsage.objects.all().delete()
    resumed = take(alice, conversation_id=grant.conversation_id)
    back_in_time(resumed, 20)
    release(resumed)
    assert used(alice) == pytest.approx(20, abs=0.5)


def test_the_slice_outlasts_the_renewal_interval():
    assert services.USAGE_SLICE_SECONDS > lease.RENEW_SECONDS + 5


# --- over real sockets ----------------------------------------------------------------------


@pytest.fixture
def short_slices(monkeypatch):
    monkeypatch.setattr(lease, "RENEW_SECONDS", 0.3)
    monkeypatch.setattr(services, "USAGE_SLICE_SECONDS", 0.6)


async def test_two_sessions_share_the_days_remainder(alice, emulator, short_slices):
    alice.daily_seconds = 3
    await alice.asave()
    started = timezone.now()
    first, second = web_client(alice), web_client(alice)
    await start_web(first)
    await start_web(second)
    for comm in (first, second):
        events, code = await receive_close(comm, seconds=5)
        assert code == 4430
        assert events[-1]["message"] == (
            "You have used today's 0 minutes of live time. It resets at midnight."
        )
        await comm.disconnect()
    # Alone each would have had 3 s; together they had 3 s, not 6.
    assert (timezone.now() - started).total_seconds() < 2.8
    charged = await sync_to_async(used)(alice)
    # Never more than the day's 3 s. Less than half a second left is no session
    # (services._usage_slice), so up to 0.5 s may go unused, and each end is charged as the
    # moment it was seen (tens of milliseconds either way on a loaded machine).
    assert 3.0 - 0.5 - 0.1 <= charged <= 3.0


async def test_usage_survives_deleting_the_conversation(alice, emulator, short_slices):
    alice.daily_seconds = 600
    await alice.asave()
    comm = web_client(alice)
    ready = await start_web(comm)
    await web_turn(comm, "hello")
    await comm.disconnect()
    before = await sync_to_async(used)(alice)
    assert before > 0
    browser = Client()
    await sync_to_async(browser.force_login)(alice)
    response = await sync_to_async(browser.post)(f"/conversations/{ready['conversation']}/delete/")
    assert response.status_code == 302
    assert not await Conversation.objects.filter(pk=ready["conversation"]).aexists()
    assert await sync_to_async(used)(alice) == pytest.approx(before)


async def test_staff_see_each_users_live_time_today(alice, staff):
    await DailyUsage.objects.acreate(user=alice, day=timezone.localdate(), seconds=125)
    await DailyUsage.objects.acreate(
        user=alice, day=timezone.localdate() - dt.timedelta(days=1), seconds=999
    )
    admin = Client()
    await sync_to_async(admin.force_login)(staff)
    page = (await sync_to_async(admin.get)("/admin/assistant/user/")).content.decode()
    assert "Live today" in page
    assert "2m 05s of 1h 00m 00s" in page
    ledger = (await sync_to_async(admin.get)("/admin/assistant/dailyusage/")).content.decode()
    assert "2m 05s" in ledger
    assert "16m 39s" in ledger
