"""Staff review in /admin/: conversations, users' quotas, access tokens."""

import asyncio
import csv
import io
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model

from assistant import control, services
from assistant.live import control_hub
from assistant.models import AccessToken, Conversation, ConversationEvent
from assistant.services import EventRecord, Usage

Kind = ConversationEvent.Kind
CHANGELIST = "/admin/assistant/conversation/"


@pytest.fixture
def make_conversation():
    def make(user, *texts, **record):
        conversation = services.conversation_start(user_id=user.pk, model="gemini-test")
        services.conversation_record(
            conversation_id=conversation.pk,
            events=[EventRecord(kind=Kind.USER_TEXT, text=t) for t in texts],
            **record,
        )
        return Conversation.objects.get(pk=conversation.pk)

    return make


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def run_action(client, action, *conversations, url=CHANGELIST, follow=False):
    return client.post(
        url,
        {"action": action, "_selected_action": [str(c.pk) for c in conversations]},
        follow=follow,
    )


# --- Access --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_non_staff_are_sent_to_the_admin_login_and_see_no_data(client, alice, who):
    conversation = services.conversation_start(user_id=alice.pk, model="gemini-test")
    services.conversation_record(
        conversation_id=conversation.pk,
        events=[EventRecord(kind=Kind.USER_TEXT, text="my private words")],
    )
    if who == "alice":
        client.force_login(alice)

    for url in [CHANGELIST, f"{CHANGELIST}{conversation.pk}/change/", "/admin/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
        assert b"my private words" not in response.content

    response = run_action(client, "export_json", conversation)
    assert response.status_code == 302
    assert b"my private words" not in response.content


# --- Conversation list ---------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_conversations_with_filters_duration_and_usage(
    staff_client, alice, bob, make_conversation
):
    make_conversation(bob, "a second user, so the user filter has a choice to offer")
    conversation = make_conversation(
        alice,
        "What is the tallest mountain?",
        usage=Usage(prompt_tokens=10, response_tokens=20, total_tokens=1234),
        seconds=65.4,
    )
    services.conversation_end(conversation_id=conversation.pk, reason="done")

    html = staff_client.get(CHANGELIST).content.decode()

    assert "What is the tallest mountain?" in html
    assert "1234" in html
    assert "65.4" in html
    for heading in [
        "By user",
        "By status",
        "By model",
        "By client kind",
        "By has tool calls",
        "By has errors",
    ]:
        assert heading in html, heading
    assert '<nav class="toplinks">' in html  # the date hierarchy on started_at


@pytest.mark.django_db
def test_admin_filters_narrow_the_list(staff_client, alice, make_conversation):
    broken = make_conversation(alice, "broken one")
    services.conversation_record(
        conversation_id=broken.pk, events=[EventRecord(kind=Kind.ERROR, text="boom")]
    )
    make_conversation(alice, "fine one")

    html = staff_client.get(CHANGELIST, {"has_errors__exact": "1"}).content.decode()

    assert "broken one" in html
    assert "fine one" not in html


@pytest.mark.django_db
def test_admin_search_finds_transcript_text(staff_client, alice, bob, make_conversation):
    make_conversation(alice, "hello")
    target = make_conversation(bob, "hi")
    services.conversation_record(
        conversation_id=target.pk,
        events=[EventRecord(kind=Kind.OUTPUT_TRANSCRIPT, text="The answer is quetzalcoatl")],
    )

    html = staff_client.get(CHANGELIST, {"q": "Quetzalcoatl"}).content.decode()

    assert f"{target.pk}/change/" in html
    assert "1 result" in html


@pytest.mark.django_db
def test_admin_search_by_username(staff_client, alice, bob, make_conversation):
    make_conversation(alice, "alice's chat")
    make_conversation(bob, "bob's chat")

    html = staff_client.get(CHANGELIST, {"q": "bob"}).content.decode()

    assert "bob&#x27;s chat" in html
    assert "alice&#x27;s chat" not in html


# --- Conversation detail -------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_timeline_shows_events_in_order_and_escaped(staff_client, alice, make_conversation):
    conversation = make_conversation(alice, "<script>alert('x')</script>", "second")
    services.conversation_record(
        conversation_id=conversation.pk,
        events=[EventRecord(kind=Kind.TOOL_CALL, data={"name": "get_weather", "q": "<b>"})],
        resumption_handle="handle-secret-xyz",
    )

    html = staff_client.get(f"{CHANGELIST}{conversation.pk}/change/").content.decode()

    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert html.index("&lt;script&gt;") < html.index("second") < html.index("get_weather")
    assert "&quot;q&quot;: &quot;&lt;b&gt;&quot;" in html
    assert "handle-secret-xyz" not in html


@pytest.mark.django_db
def test_conversations_cannot_be_added_or_changed_in_admin(staff_client, alice, make_conversation):
    conversation = make_conversation(alice, "original")

    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    response = staff_client.post(
        f"{CHANGELIST}{conversation.pk}/change/", {"title": "edited", "model": "x"}
    )

    assert response.status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).title == "original"


@pytest.mark.django_db
def test_staff_can_delete_a_conversation(staff_client, alice, make_conversation):
    conversation = make_conversation(alice, "please remove my data")

    response = staff_client.post(f"{CHANGELIST}{conversation.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


# --- Export actions ------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_exports_selected_conversations_as_json(staff_client, alice, make_conversation):
    first = make_conversation(alice, "first chat")
    make_conversation(alice, "not selected")

    response = run_action(staff_client, "export_json", first)

    assert response["Content-Disposition"] == 'attachment; filename="pastra-conversations.json"'
    data = json.loads(response.content)
    assert [c["id"] for c in data["conversations"]] == [str(first.pk)]
    assert data["conversations"][0]["events"][0]["text"] == "first chat"


@pytest.mark.django_db
def test_admin_exports_selected_conversations_as_csv(staff_client, alice, make_conversation):
    conversation = make_conversation(alice, "hello there", "=HYPERLINK(evil)")

    response = run_action(staff_client, "export_csv", conversation)

    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="pastra-conversations.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["seq"], r["text"]) for r in rows] == [
        ("1", "hello there"),
        ("2", "'=HYPERLINK(evil)"),
    ]
    assert {r["conversation"] for r in rows} == {str(conversation.pk)}
    assert {r["user"] for r in rows} == {"alice"}


# --- End live session ----------------------------------------------------------------------


async def _listen() -> str:
    """A channel on the control broadcast (every worker's hub listens there)."""
    layer = get_channel_layer()
    channel = f"test.admin.{uuid.uuid4().hex}"
    await layer.group_add(control_hub.BROADCAST, channel)
    return channel


async def _receive(channel: str) -> dict:
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout=5)


@pytest.mark.django_db
def test_end_session_action_signals_the_live_conversation(staff_client, alice, make_conversation):
    live = make_conversation(alice, "still talking")
    ended = make_conversation(alice, "finished")
    services.conversation_end(conversation_id=ended.pk, reason="done")
    channel = async_to_sync(_listen)()

    response = run_action(staff_client, "end_live_sessions", live, ended, follow=True)

    message = async_to_sync(_receive)(channel)
    assert message["type"] == control.END_EVENT
    assert message[control_hub.GROUP_KEY] == control.conversation_group(live.pk)
    assert "administrator" in message["reason"]
    assert "Signalled 1 live session to end." in response.content.decode()


@pytest.mark.django_db
def test_end_session_action_with_nothing_live_signals_nothing(
    staff_client, alice, make_conversation
):
    ended = make_conversation(alice, "finished")
    services.conversation_end(conversation_id=ended.pk, reason="done")

    response = run_action(staff_client, "end_live_sessions", ended, follow=True)

    assert "Signalled 0 live sessions to end." in response.content.decode()


# --- Users ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_can_override_a_users_quotas(staff_client, alice):
    url = f"/admin/assistant/user/{alice.pk}/change/"
    html = staff_client.get(url).content.decode()
    assert 'name="max_sessions"' in html
    assert 'name="daily_seconds"' in html

    response = staff_client.post(
        url,
        {
            "username": "alice",
            "email": "alice@example.com",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "max_sessions": "5",
            "daily_seconds": "7200",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert alice.effective_max_sessions() == 5
    assert alice.effective_daily_seconds() == 7200


@pytest.mark.django_db
def test_user_list_shows_quota_columns(staff_client, make_user):
    make_user("heavy", max_sessions=9)

    html = staff_client.get("/admin/assistant/user/").content.decode()

    assert "heavy" in html
    assert "Max sessions" in html


# --- Access tokens -------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_admin_shows_the_prefix_never_the_hash(staff_client, alice):
    token, raw = services.access_token_create(user=alice, name="ci")

    listing = staff_client.get("/admin/assistant/accesstoken/").content.decode()
    detail = staff_client.get(f"/admin/assistant/accesstoken/{token.pk}/change/").content.decode()

    for html in (listing, detail):
        assert token.prefix in html
        assert token.token_hash not in html
        assert raw not in html


@pytest.mark.django_db
def test_token_admin_is_read_only(staff_client, alice):
    token, _ = services.access_token_create(user=alice, name="ci")

    assert staff_client.get("/admin/assistant/accesstoken/add/").status_code == 403
    staff_client.post(f"/admin/assistant/accesstoken/{token.pk}/change/", {"name": "changed"})

    assert AccessToken.objects.get(pk=token.pk).name == "ci"


@pytest.mark.django_db
def test_token_admin_revoke_action(staff_client, alice):
    token, raw = services.access_token_create(user=alice, name="leaked")

    response = run_action(
        staff_client, "revoke", token, url="/admin/assistant/accesstoken/", follow=True
    )

    assert "Revoked 1 token." in response.content.decode()
    assert services.access_token_authenticate(raw=raw) is None


@pytest.mark.django_db
def test_admin_models_are_registered_for_the_custom_user(staff_client):
    html = staff_client.get("/admin/").content.decode()

    assert get_user_model()._meta.label == "assistant.User"
    for url in ["/admin/assistant/conversation/", "/admin/assistant/user/"]:
        assert url in html
    assert "/admin/assistant/accesstoken/" in html
