"""Reads: a user's own history and search, one conversation, export, tokens, live seconds."""

from datetime import timedelta

import pytest
from django.utils import timezone

from assistant import selectors, services
from assistant.models import Conversation, ConversationEvent
from assistant.services import EventRecord, Usage

Kind = ConversationEvent.Kind


@pytest.fixture
def make_conversation():
    def make(user, *texts, kind=Kind.USER_TEXT, **record):
        conversation = services.conversation_start(user_id=user.pk, model="gemini-test")
        services.conversation_record(
            conversation_id=conversation.pk,
            events=[EventRecord(kind=kind, text=t) for t in texts],
            **record,
        )
        return Conversation.objects.get(pk=conversation.pk)

    return make


def started(conversation, when):
    Conversation.objects.filter(pk=conversation.pk).update(started_at=when)


@pytest.mark.django_db
def test_conversation_list_shows_only_own_conversations_newest_first(alice, bob, make_conversation):
    older = make_conversation(alice, "first")
    newer = make_conversation(alice, "second")
    make_conversation(bob, "bob's")
    started(older, timezone.now() - timedelta(hours=2))

    assert list(selectors.conversation_list_for_user(user=alice)) == [newer, older]


@pytest.mark.django_db
def test_search_matches_transcript_text_case_insensitively(alice, make_conversation):
    make_conversation(alice, "Tell me a joke")
    spoken = make_conversation(alice, "It is sunny in LISBON today", kind=Kind.OUTPUT_TRANSCRIPT)

    found = selectors.conversation_list_for_user(user=alice, query="lisbon")

    assert list(found) == [spoken]


@pytest.mark.django_db
def test_search_matches_the_title_and_returns_each_conversation_once(alice, make_conversation):
    match = make_conversation(alice, "weather in Oslo", "weather again", "more weather")

    assert list(selectors.conversation_list_for_user(user=alice, query="weather")) == [match]


@pytest.mark.django_db
def test_search_never_returns_other_users_conversations(alice, bob, make_conversation):
    make_conversation(bob, "a secret plan")

    assert not selectors.conversation_list_for_user(user=alice, query="secret").exists()


@pytest.mark.django_db
def test_search_ignores_tool_payloads(alice, make_conversation):
    conversation = make_conversation(alice, "hello")
    services.conversation_record(
        conversation_id=conversation.pk,
        events=[EventRecord(kind=Kind.TOOL_CALL, text="get_weather zanzibar")],
    )

    assert not selectors.conversation_list_for_user(user=alice, query="zanzibar").exists()


@pytest.mark.django_db
def test_conversation_get_for_user_refuses_another_users_conversation(
    alice, bob, make_conversation
):
    conversation = make_conversation(alice, "mine")

    assert selectors.conversation_get_for_user(user=alice, conversation_id=conversation.pk)
    with pytest.raises(Conversation.DoesNotExist):
        selectors.conversation_get_for_user(user=bob, conversation_id=conversation.pk)


@pytest.mark.django_db
def test_conversation_events_come_in_seq_order(alice, make_conversation):
    conversation = make_conversation(alice, "one", "two")
    services.conversation_record(
        conversation_id=conversation.pk, events=[EventRecord(kind=Kind.MODEL_TEXT, text="three")]
    )

    events = selectors.conversation_events(conversation=conversation)

    assert [e.text for e in events] == ["one", "two", "three"]
    assert [e.seq for e in events] == [1, 2, 3]


@pytest.mark.django_db
def test_conversation_export_is_self_contained(alice, make_conversation):
    conversation = make_conversation(
        alice, "hi", usage=Usage(prompt_tokens=3, response_tokens=4, total_tokens=7), seconds=1.5
    )

    exported = selectors.conversation_export(conversation=conversation)

    assert exported["id"] == str(conversation.pk)
    assert exported["user"] == "alice"
    assert exported["title"] == "hi"
    assert exported["usage"] == {"prompt_tokens": 3, "response_tokens": 4, "total_tokens": 7}
    assert exported["seconds_used"] == 1.5
    assert [(e["seq"], e["kind"], e["text"]) for e in exported["events"]] == [
        (1, "user_text", "hi")
    ]
    assert "resumption_handle" not in exported


@pytest.mark.django_db
def test_access_token_list_shows_only_own_tokens(alice, bob):
    mine, _ = services.access_token_create(user=alice, name="mine")
    services.access_token_create(user=bob, name="bob's")

    assert list(selectors.access_token_list_for_user(user=alice)) == [mine]


@pytest.mark.django_db
def test_user_live_seconds_today_reads_todays_ledger_row_only(alice, bob, make_conversation):
    """The ledger, not the conversations: a conversation's own seconds count for nothing."""
    from assistant.models import DailyUsage

    today = timezone.localdate()
    DailyUsage.objects.create(user=alice, day=today, seconds=42.5)
    DailyUsage.objects.create(user=alice, day=today - timedelta(days=1), seconds=1000)
    DailyUsage.objects.create(user=bob, day=today, seconds=500)
    make_conversation(alice, "a", seconds=30)

    assert selectors.user_live_seconds_today(user_id=alice.pk) == pytest.approx(42.5)
    assert selectors.user_live_seconds_today(user_id=alice.pk + 999) == 0.0
    alice.daily_seconds = 60
    assert selectors.user_live_seconds_left(user=alice) == pytest.approx(17.5)


@pytest.mark.django_db
def test_conversation_active_count_ignores_ended_and_stale(alice, make_conversation):
    make_conversation(alice, "live")
    ended = make_conversation(alice, "done")
    services.conversation_end(conversation_id=ended.pk, reason="bye")
    stale = make_conversation(alice, "stale")
    started(stale, timezone.now() - timedelta(hours=3))

    assert selectors.conversation_active_count(user_id=alice.pk) == 2
    assert (
        selectors.conversation_active_count(user_id=alice.pk, stale_after=timedelta(hours=1)) == 1
    )
