"""The writes every session makes, which run without the ORM on PostgreSQL: a recorded batch
(one statement, at every turn), a start (the conversation, the lease and the ledger in one
statement) and a close. They must store what the ORM would, number events densely however
writers interleave, and keep the migration that numbers existing conversations right."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from assistant import services
from assistant.models import Conversation, ConversationEvent, DailyUsage, SessionLease
from assistant.services import EventRecord, Usage

Kind = ConversationEvent.Kind


def batch(writer: int, turn: int) -> list[EventRecord]:
    return [
        EventRecord(kind=Kind.USER_TEXT, text=f"w{writer} t{turn} asked", turn=turn),
        EventRecord(kind=Kind.OUTPUT_TRANSCRIPT, text=f"w{writer} t{turn} answered", turn=turn),
        EventRecord(kind=Kind.TOOL_CALL, data={"name": "get_weather", "w": writer}, turn=turn),
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_batch_is_one_statement_on_postgresql(alice, django_assert_num_queries):
    conversation = services.conversation_start(user_id=alice.pk, model="m")
    usage = Usage(prompt_tokens=3, response_tokens=4, total_tokens=7)
    with django_assert_num_queries(1):
        written = services.conversation_record(
            conversation_id=conversation.pk, events=batch(0, 1), usage=usage, seconds=1.5,
            resumption_handle="h1",
        )  # fmt: skip
    assert written == 3
    conversation.refresh_from_db()
    assert (conversation.last_seq, conversation.total_tokens, conversation.seconds_used) == (
        3,
        7,
        1.5,
    )
    assert conversation.title == "w0 t1 asked"
    assert conversation.has_tool_calls
    assert not conversation.has_errors
    assert conversation.resumption_handle == "h1"
    data = ConversationEvent.objects.get(conversation=conversation, seq=3).data
    assert data == {"name": "get_weather", "w": 0}  # stored as JSON, read back as JSON


@pytest.mark.django_db
def test_a_missing_conversation_is_an_error_even_for_an_empty_batch(alice):
    conversation = services.conversation_start(user_id=alice.pk, model="m")
    conversation.delete()
    for events in (batch(0, 1), []):
        with pytest.raises(Conversation.DoesNotExist):
            services.conversation_record(conversation_id=conversation.pk, events=events)
    assert not ConversationEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_to_one_conversation_number_densely(alice):
    """Four writers (say a session and its resumed successor, or a retried batch) append to one
    conversation at the same moment, each on its own connection: no seq is taken twice, none
    is skipped, and every writer's usage is counted."""
    conversation = services.conversation_start(user_id=alice.pk, model="m")
    writers, turns = 4, 15
    ready = threading.Barrier(writers, timeout=10)
    errors: list = []

    def write(writer: int) -> None:
        try:
            ready.wait()
            for turn in range(turns):
                services.conversation_record(
                    conversation_id=conversation.pk, events=batch(writer, turn),
                    usage=Usage(total_tokens=1),
                )  # fmt: skip
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    seqs = list(conversation.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, writers * turns * 3 + 1))
    conversation.refresh_from_db()
    assert conversation.last_seq == len(seqs)
    assert conversation.total_tokens == writers * turns
    # Each batch's three events are consecutive: a batch is numbered as one.
    for first in range(1, len(seqs), 3):
        texts = list(
            conversation.events.filter(seq__in=(first, first + 1)).values_list("text", flat=True)
        )
        assert texts[0].split(" ")[:2] == texts[1].split(" ")[:2]


def _owner_deletes(user, conversation_id) -> bool:
    return services.conversation_delete(user=user, conversation_id=conversation_id)


def _staff_deletes(user, conversation_id) -> bool:  # the admin's "Delete selected"
    from django.contrib import admin

    model_admin = admin.site._registry[Conversation]
    model_admin.delete_queryset(None, Conversation.objects.filter(pk=conversation_id))
    return True


def _delete_when_blocked(deletes, user, conversation_id) -> tuple[threading.Thread, list]:
    """Start `deletes(user, conversation_id)` on its own thread (and connection) and return
    once it waits for a row lock another connection holds (or after 10 s): the thread, and
    the list its result or error goes into."""
    outcome: list = []

    def delete() -> None:
        try:
            outcome.append(deletes(user, conversation_id))
        except Exception as error:
            outcome.append(error)
        finally:
            connection.close()

    deleter = threading.Thread(target=delete)
    deleter.start()
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
            time.sleep(0.02)
    return deleter, outcome


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deletes", [_owner_deletes, _staff_deletes], ids=["owner", "staff"])
def test_a_batch_written_while_its_conversation_is_deleted_does_not_break_the_delete(
    alice, deletes
):
    """The owner (or staff) deletes a conversation while its live session's recorder writes a
    batch: the delete waits for the batch and takes its events too (before, it collected the
    events first, the batch slipped in, and the delete's commit failed on the foreign key)."""
    conversation = services.conversation_start(user_id=alice.pk, model="m")
    services.conversation_record(conversation_id=conversation.pk, events=batch(0, 0))
    recorder = connections.create_connection("default")  # the recorder's own connection
    recorder.connect()
    recorder.set_autocommit(False)
    with recorder.cursor() as cursor:  # a batch under way: the conversation's row is locked
        cursor.execute(
            f"UPDATE {Conversation._meta.db_table} SET last_seq = last_seq + 1 WHERE id = %s",  # noqa: S608
            [conversation.pk],
        )
    # The delete waits for the recorder's lock.
    deleter, outcome = _delete_when_blocked(deletes, alice, conversation.pk)
    with recorder.cursor() as cursor:  # the batch's events, then its commit
        cursor.execute(
            f"INSERT INTO {ConversationEvent._meta.db_table}"  # noqa: S608
            " (conversation_id, seq, turn, kind, text, data, duration_ms, created_at)"
            " VALUES (%s, 4, 1, %s, 'late', '{}', NULL, now())",
            [conversation.pk, Kind.USER_TEXT],
        )
    recorder.commit()
    recorder.close()
    deleter.join(timeout=30)
    assert outcome == [True]
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not ConversationEvent.objects.filter(conversation_id=conversation.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_numbers_existing_conversations_from_their_events(alice):
    executor = MigrationExecutor(connection)
    executor.migrate([("assistant", "0006_user_standing_instructions")])
    try:
        old = executor.loader.project_state([("assistant", "0006_user_standing_instructions")]).apps
        OldConversation = old.get_model("assistant", "Conversation")
        OldEvent = old.get_model("assistant", "ConversationEvent")
        with_events = OldConversation.objects.create(user_id=alice.pk, model="m")
        empty = OldConversation.objects.create(user_id=alice.pk, model="m")
        OldEvent.objects.bulk_create(
            OldEvent(conversation=with_events, seq=s, kind="user_text", text=str(s),
                     created_at=with_events.started_at)
            for s in (1, 2, 3, 4)
        )  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert Conversation.objects.get(pk=with_events.pk).last_seq == 4
    assert Conversation.objects.get(pk=empty.pk).last_seq == 0
    services.conversation_record(
        conversation_id=with_events.pk, events=[EventRecord(kind=Kind.USER_TEXT, text="5")]
    )
    assert list(
        ConversationEvent.objects.filter(conversation_id=with_events.pk).values_list(
            "seq", flat=True
        )
    ) == [1, 2, 3, 4, 5]


@pytest.mark.django_db
def test_a_start_stores_what_the_orm_would_and_a_close_undoes_the_lease(alice):
    grant = services.lease_acquire(user_id=alice.pk, model="m", voice="Puck", client_kind="sdk")
    made = services.conversation_start(user_id=alice.pk, model="m", voice="Puck", client_kind="sdk")
    started = Conversation.objects.get(pk=grant.conversation_id)
    fields = [f.attname for f in Conversation._meta.concrete_fields]
    ignored = {"id", "started_at"}
    assert {f: getattr(started, f) for f in fields if f not in ignored} == {
        f: getattr(made, f) for f in fields if f not in ignored
    }
    assert started.started_at is not None
    lease = SessionLease.objects.get(pk=grant.lease_id)
    assert lease.conversation_id == started.pk
    assert (lease.user_id, lease.client_kind) == (alice.pk, "sdk")
    assert lease.reserved_seconds == pytest.approx(grant.remaining_seconds)
    assert lease.heartbeat_at == lease.settled_at
    charged = DailyUsage.objects.get(user=alice)
    assert charged.seconds == pytest.approx(grant.remaining_seconds)  # the slice, in advance

    services.lease_release(
        lease_id=grant.lease_id, conversation_id=started.pk, reason="bye", failed=True,
        user_id=alice.pk,
    )  # fmt: skip
    assert not SessionLease.objects.exists()
    started.refresh_from_db()
    assert (started.status, started.end_reason) == (Conversation.Status.FAILED, "bye")
    assert started.ended_at is not None
    charged.refresh_from_db()
    assert charged.seconds < 1.0  # the reservation refunded, the few ms used charged


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deletes", [_owner_deletes, _staff_deletes], ids=["owner", "staff"])
def test_a_conversation_deleted_while_its_session_closes_does_not_deadlock(alice, deletes):
    """A live conversation is deleted: its session is told to end just before, so its close
    (the lease dropped, then the conversation ended) runs beside the delete. The delete waits
    for the close and then finds nothing left to end (before, it locked the conversation
    first and waited for the lease while the close, holding the lease, waited for the
    conversation: PostgreSQL's deadlock detector failed one of them, the page with a 500)."""
    grant = services.lease_acquire(user_id=alice.pk, model="m", voice="", client_kind="web")
    closing = connections.create_connection("default")  # the session's database thread
    closing.connect()
    closing.set_autocommit(False)
    with closing.cursor() as cursor:  # the close under way: the lease dropped
        cursor.execute(services._RELEASE_SQL, [grant.lease_id, alice.pk])
    # The delete waits for a lock the close holds.
    deleter, outcome = _delete_when_blocked(deletes, alice, grant.conversation_id)
    time.sleep(0.1)  # the old order's delete got on from the user's row to the conversation's
    with closing.cursor() as cursor:  # the close's second statement: the conversation ended
        cursor.execute(
            services._END_SQL, ["ended", "bye", dt.datetime.now(dt.UTC), grant.conversation_id]
        )
    closing.commit()
    closing.close()
    deleter.join(timeout=30)
    assert outcome == [True]
    assert not Conversation.objects.filter(pk=grant.conversation_id).exists()
    assert not SessionLease.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deletes", [_owner_deletes, _staff_deletes], ids=["owner", "staff"])
def test_deleting_a_live_conversation_charges_its_use_once(alice, deletes):
    """Its lease goes with it; the slice it reserved in advance is settled as its close
    would have settled it (a refund of what it did not use), and the session's own close,
    arriving after, charges nothing more and fails on nothing."""
    grant = services.lease_acquire(user_id=alice.pk, model="m", voice="", client_kind="web")
    reserved = DailyUsage.objects.get(user=alice).seconds
    assert reserved == pytest.approx(grant.remaining_seconds)
    assert reserved > 10
    assert deletes(alice, grant.conversation_id)
    assert not SessionLease.objects.exists()
    charged = DailyUsage.objects.get(user=alice).seconds
    assert charged < 1.0  # the few milliseconds it ran, not its whole slice
    services.lease_release(
        lease_id=grant.lease_id, conversation_id=grant.conversation_id, reason="bye",
        failed=False, user_id=alice.pk,
    )  # fmt: skip
    assert DailyUsage.objects.get(user=alice).seconds == pytest.approx(charged)
