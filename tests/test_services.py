"""Writes: the conversation event log, conversation lifecycle, and access tokens."""

import datetime as dt
import hashlib

import pytest
from django.db import connection

from assistant import metrics, services
from assistant.models import AccessToken, Conversation, ConversationEvent
from assistant.services import EventRecord, Usage

Kind = ConversationEvent.Kind


@pytest.fixture
def conversation(alice):
    return services.conversation_start(user_id=alice.pk, model="gemini-test", voice="Puck")


def record(conversation, *events, **kwargs):
    return services.conversation_record(conversation_id=conversation.pk, events=events, **kwargs)


def reload(conversation):
    return Conversation.objects.get(pk=conversation.pk)


@pytest.mark.django_db
def test_conversation_start_is_active_and_owned(alice, conversation):
    assert conversation.user == alice
    assert conversation.status == Conversation.Status.ACTIVE
    assert conversation.client_kind == Conversation.ClientKind.WEB
    assert conversation.ended_at is None


@pytest.mark.django_db
def test_conversation_record_numbers_events_densely_across_batches(conversation):
    written = record(
        conversation,
        EventRecord(kind=Kind.USER_TEXT, text="one"),
        EventRecord(kind=Kind.MODEL_TEXT, text="two"),
    )
    record(conversation)  # an empty batch takes no numbers
    record(conversation, EventRecord(kind=Kind.USER_TEXT, text="three"))
    record(
        conversation,
        EventRecord(kind=Kind.MODEL_TEXT, text="four"),
        EventRecord(kind=Kind.USAGE, text="five"),
    )

    events = list(conversation.events.order_by("seq").values_list("seq", "text"))
    assert written == 2
    assert events == [(1, "one"), (2, "two"), (3, "three"), (4, "four"), (5, "five")]


@pytest.mark.django_db
def test_conversation_record_numbering_is_per_conversation(alice, conversation):
    other = services.conversation_start(user_id=alice.pk, model="gemini-test")
    record(conversation, EventRecord(kind=Kind.USER_TEXT, text="a"))
    record(other, EventRecord(kind=Kind.USER_TEXT, text="b"))

    assert list(other.events.values_list("seq", flat=True)) == [1]


@pytest.mark.django_db
def test_conversation_record_accumulates_usage_and_seconds(conversation):
    record(conversation, usage=Usage(prompt_tokens=10, response_tokens=5, total_tokens=15))
    record(
        conversation,
        usage=Usage(prompt_tokens=1, response_tokens=2, total_tokens=3),
        seconds=2.5,
    )
    record(conversation, seconds=1.25)

    conversation = reload(conversation)
    assert (conversation.prompt_tokens, conversation.response_tokens) == (11, 7)
    assert conversation.total_tokens == 18
    assert conversation.seconds_used == pytest.approx(3.75)


@pytest.mark.django_db
def test_conversation_title_comes_from_first_user_text(conversation):
    record(
        conversation,
        EventRecord(kind=Kind.MODEL_TEXT, text="Hello, how can I help?"),
        EventRecord(kind=Kind.INPUT_TRANSCRIPT, text="   "),
        EventRecord(kind=Kind.USER_TEXT, text="  What's the weather in Paris?  "),
    )
    record(conversation, EventRecord(kind=Kind.USER_TEXT, text="And tomorrow?"))

    assert reload(conversation).title == "What's the weather in Paris?"


@pytest.mark.django_db
def test_conversation_title_is_cut_to_fit(conversation):
    record(conversation, EventRecord(kind=Kind.INPUT_TRANSCRIPT, text="word " * 100))

    assert len(reload(conversation).title) == 200


@pytest.mark.django_db
def test_conversation_record_flags_tool_calls_and_errors(conversation):
    record(conversation, EventRecord(kind=Kind.USER_TEXT, text="hi"))
    assert not reload(conversation).has_tool_calls
    assert not reload(conversation).has_errors

    record(conversation, EventRecord(kind=Kind.TOOL_CALL, data={"name": "get_weather"}))
    record(conversation, EventRecord(kind=Kind.ERROR, text="upstream closed"))

    conversation = reload(conversation)
    assert conversation.has_tool_calls
    assert conversation.has_errors


@pytest.mark.django_db
def test_code_execution_counts_as_a_tool_call(conversation):
    record(conversation, EventRecord(kind=Kind.CODE_EXECUTION, data={"code": "print(2+2)"}))

    assert reload(conversation).has_tool_calls


@pytest.mark.django_db
def test_conversation_record_keeps_the_latest_resumption_handle(conversation):
    record(conversation, resumption_handle="first")
    record(conversation, resumption_handle="second")
    record(conversation)  # no handle in this batch: keep the one we have

    assert reload(conversation).resumption_handle == "second"


@pytest.mark.django_db
def test_conversation_end_is_idempotent_and_keeps_the_first_reason(conversation):
    assert services.conversation_end(conversation_id=conversation.pk, reason="user hung up")
    ended_at = reload(conversation).ended_at

    assert not services.conversation_end(
        conversation_id=conversation.pk, reason="worker shutdown", status="failed"
    )

    conversation = reload(conversation)
    assert conversation.status == Conversation.Status.ENDED
    assert conversation.end_reason == "user hung up"
    assert conversation.ended_at == ended_at
    assert conversation.duration_seconds >= 0


@pytest.mark.django_db
def test_conversation_reopen_makes_it_active_again(conversation):
    services.conversation_end(conversation_id=conversation.pk, reason="network")
    services.conversation_reopen(conversation_id=conversation.pk)

    conversation = reload(conversation)
    assert conversation.status == Conversation.Status.ACTIVE
    assert conversation.ended_at is None
    assert conversation.end_reason == ""


@pytest.mark.django_db
def test_conversation_delete_removes_only_the_owners_conversation(alice, bob, conversation):
    record(conversation, EventRecord(kind=Kind.USER_TEXT, text="secret"))

    assert not services.conversation_delete(user=bob, conversation_id=conversation.pk)
    assert Conversation.objects.filter(pk=conversation.pk).exists()

    assert services.conversation_delete(user=alice, conversation_id=conversation.pk)
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not ConversationEvent.objects.exists()


@pytest.mark.django_db
def test_access_token_create_stores_only_the_sha256(alice):
    token, raw = services.access_token_create(user=alice, name="laptop")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AccessToken._meta.db_table}")  # noqa: S608
        (row,) = cursor.fetchall()
    assert raw.startswith(services.TOKEN_PREFIX)
    assert len(raw) > 40
    assert not any(raw in str(value) for value in row)
    assert hashlib.sha256(raw.encode()).hexdigest() in row
    assert raw.startswith(token.prefix)
    assert token.name == "laptop"


@pytest.mark.django_db
def test_access_tokens_are_unique(alice):
    raws = {services.access_token_create(user=alice, name="t")[1] for _ in range(5)}

    assert len(raws) == 5


@pytest.mark.django_db
def test_access_token_authenticates_its_owner_and_records_the_use(alice):
    token, raw = services.access_token_create(user=alice, name="sdk")
    assert token.last_used_at is None

    assert services.access_token_authenticate(raw=raw) == alice

    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.django_db
def test_a_tokens_use_is_recorded_once_a_minute(alice, monkeypatch, django_assert_num_queries):
    """As the token list shows it (to the minute): a burst of sockets with one token reads it
    once each and writes its use once."""
    token, raw = services.access_token_create(user=alice, name="sdk")
    clock = [dt.datetime(2026, 3, 1, 9, 30, 5, tzinfo=dt.UTC)]
    monkeypatch.setattr(services.timezone, "now", lambda: clock[0])

    with django_assert_num_queries(2):  # the lookup, the first use this minute
        assert services.access_token_find(raw=raw).last_used_at == clock[0]
    clock[0] += dt.timedelta(seconds=54)
    with django_assert_num_queries(1):  # 09:30:59, the same minute: the lookup only
        assert services.access_token_find(raw=raw).pk == token.pk
    clock[0] += dt.timedelta(seconds=2)
    with django_assert_num_queries(2):  # 09:31:01
        services.access_token_find(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at == clock[0]


@pytest.mark.django_db
def test_a_live_socket_identifies_a_token_by_the_same_rules(alice, monkeypatch):
    """`access_token_identify` (the Gemini path's lookup: ids only) refuses what
    `access_token_find` refuses and records the use the same way."""
    token, raw = services.access_token_create(user=alice, name="sdk")
    clock = [dt.datetime(2026, 3, 1, 9, 30, 5, tzinfo=dt.UTC)]
    monkeypatch.setattr(services.timezone, "now", lambda: clock[0])
    assert services.access_token_identify(raw=raw) == (token.pk, alice.pk)
    token.refresh_from_db()
    assert token.last_used_at == clock[0]
    assert services.access_token_identify(raw=raw + "x") is None
    assert services.access_token_identify(raw="") is None

    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert services.access_token_identify(raw=raw) is None
    alice.is_active = True
    alice.save(update_fields=["is_active"])
    services.access_token_revoke(user=alice, token_id=token.pk)
    assert services.access_token_identify(raw=raw) is None


@pytest.mark.django_db
def test_revoked_token_no_longer_authenticates(alice):
    token, raw = services.access_token_create(user=alice, name="sdk")

    assert services.access_token_revoke(user=alice, token_id=token.pk)
    assert services.access_token_authenticate(raw=raw) is None
    assert not services.access_token_revoke(user=alice, token_id=token.pk)  # already revoked


@pytest.mark.django_db
def test_access_token_revoke_ignores_other_users_tokens(alice, bob):
    token, raw = services.access_token_create(user=alice, name="sdk")

    assert not services.access_token_revoke(user=bob, token_id=token.pk)
    assert services.access_token_authenticate(raw=raw) == alice


@pytest.mark.django_db
def test_token_of_an_inactive_user_does_not_authenticate(alice):
    _, raw = services.access_token_create(user=alice, name="sdk")
    alice.is_active = False
    alice.save()

    assert services.access_token_authenticate(raw=raw) is None


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["", "not-a-token", "pst_wrong", "pst_" + "x" * 300])
def test_malformed_or_unknown_tokens_do_not_authenticate(alice, raw):
    services.access_token_create(user=alice, name="sdk")

    assert services.access_token_authenticate(raw=raw) is None


@pytest.mark.django_db
def test_a_nul_character_does_not_lose_the_turn(conversation):
    """PostgreSQL refuses U+0000 in text and jsonb: the whole turn would be dropped. It is
    stored as U+FFFD, in the text, the data (keys too) and the title, and counted."""
    repaired = metrics.RECORDED_TEXT_REPAIRED._value.get()
    written = record(
        conversation,
        EventRecord(kind=Kind.USER_TEXT, text="hello\x00world"),
        EventRecord(kind=Kind.TOOL_CALL, data={"args": {"q\x00": ["a\x00b", 1]}}),
        usage=Usage(prompt_tokens=3, response_tokens=4, total_tokens=7),
    )
    assert written == 2
    text = conversation.events.order_by("seq").values_list("text", flat=True)[0]
    assert text == "hello\ufffdworld"
    tool = conversation.events.get(kind=Kind.TOOL_CALL)
    assert tool.data == {"args": {"q\ufffd": ["a\ufffdb", 1]}}
    fresh = reload(conversation)
    assert fresh.title == "hello\ufffdworld"
    assert fresh.total_tokens == 7
    assert metrics.RECORDED_TEXT_REPAIRED._value.get() == repaired + 2
