"""services.conversation_record under concurrency and at its cost: one statement per batch on
PostgreSQL (it runs at every turn of every live session), dense numbering however writers to
one conversation interleave, and the migration that numbers existing conversations."""

import threading

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from assistant import services
from assistant.models import Conversation, ConversationEvent
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
