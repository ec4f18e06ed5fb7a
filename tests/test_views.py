"""The user's pages: assistant shell, history, transcript, export, delete, tokens."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant import services
from assistant.models import AccessToken, Conversation, ConversationEvent, DailyUsage
from assistant.services import EventRecord

Kind = ConversationEvent.Kind


@pytest.fixture
def make_conversation():
    def make(user, *events, title_text="Hello Pastra"):
        conversation = services.conversation_start(user_id=user.pk, model="gemini-test")
        services.conversation_record(
            conversation_id=conversation.pk,
            events=[EventRecord(kind=Kind.USER_TEXT, text=title_text), *events],
        )
        return Conversation.objects.get(pk=conversation.pk)

    return make


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob):
    client = Client()
    client.force_login(bob)
    return client


def page(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# --- Login required ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("talk", {}),
        ("conversation_list", {}),
        ("conversation_detail", {"conversation_id": uuid.uuid4()}),
        ("conversation_export", {"conversation_id": uuid.uuid4()}),
        ("conversation_delete", {"conversation_id": uuid.uuid4()}),
        ("token_list", {}),
    ],
)
def test_user_pages_send_anonymous_visitors_to_login(client, name, kwargs):
    url = reverse(f"assistant:{name}", kwargs=kwargs)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.django_db
def test_token_revoke_requires_login(client, alice):
    token, _ = services.access_token_create(user=alice, name="t")

    response = client.post(reverse("assistant:token_revoke", args=[token.pk]))

    assert response.status_code == 302
    assert AccessToken.objects.get(pk=token.pk).is_active


# --- Assistant page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_talk_page_has_the_shell_and_test_hooks(alice_client):
    html = page(alice_client.get("/"))

    assert re.search(r'<section[^>]*data-pastra[^>]*data-state="idle"', html)
    for hook in [
        "talk-button",
        "mute-button",
        "camera-button",
        "flip-camera-button",
        "screen-button",
        "text-input",
        "send-button",
        "transcript",
        "tool-activity",
        "status",
        "quota-remaining",
        "interrupt-button",
    ]:
        assert f'data-testid="{hook}"' in html, hook
    assert '<script type="module" src="/static/js/main.js"></script>' in html
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html


@pytest.mark.django_db
def test_talk_page_shows_what_is_left_of_today_from_the_ledger(alice, alice_client):
    alice.daily_seconds = 3600
    alice.save()
    DailyUsage.objects.create(user=alice, day=timezone.localdate(), seconds=610.4)
    DailyUsage.objects.create(  # yesterday's use does not count today
        user=alice, day=timezone.localdate() - timedelta(days=1), seconds=3000
    )
    html = page(alice_client.get("/"))
    (quota,) = re.findall(r'<span[^>]*data-testid="quota-remaining"[^>]*>([^<]*)</span>', html)
    assert quota == "49 min left today"
    assert 'data-seconds="2989"' in html
    alice.daily_seconds = 600
    alice.save()
    html = page(alice_client.get("/"))
    assert ">No live time left today</span>" in html


@pytest.mark.django_db
def test_talk_page_config_has_socket_model_and_voice_but_never_the_key(alice_client, settings):
    settings.GEMINI_API_KEY = "fake-upstream-key-must-not-leak"
    settings.PASTRA_MODEL = "gemini-test-live"
    settings.PASTRA_VOICE = "Kore"

    html = page(alice_client.get("/"))

    match = re.search(r'<script id="pastra-config" type="application/json">(.*?)</script>', html)
    config = json.loads(match.group(1))
    assert config["wsPath"] == "/ws/live/"
    assert config["model"] == "gemini-test-live"
    assert config["voice"] == "Kore"
    assert "fake-upstream-key-must-not-leak" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("emulator", [True, False])
def test_emulator_badge_shows_only_with_the_emulator(alice_client, settings, emulator):
    settings.PASTRA_UPSTREAM_IS_EMULATOR = emulator

    html = page(alice_client.get("/"))

    assert ('data-testid="emulator-badge"' in html) is emulator
    assert ('"emulator": true' in html) is emulator


@pytest.mark.django_db
def test_navigation_offers_admin_only_to_staff(alice_client, staff):
    assert "/admin/" not in page(alice_client.get("/"))

    alice_client.force_login(staff)
    html = page(alice_client.get("/"))
    assert 'href="/admin/"' in html


@pytest.mark.django_db
def test_navigation_logs_out_with_a_post_form(alice_client):
    html = page(alice_client.get("/"))

    assert re.search(r'<form[^>]*method="post"[^>]*action="/accounts/logout/"', html)
    for link in ["/conversations/", "/settings/tokens/"]:
        assert f'href="{link}"' in html


# --- History -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_conversation_list_shows_only_own_conversations(
    alice_client, alice, bob, make_conversation
):
    make_conversation(alice, title_text="Alice asks about tides")
    make_conversation(bob, title_text="Bob's private question")

    html = page(alice_client.get("/conversations/"))

    assert "Alice asks about tides" in html
    assert "Bob&#x27;s private question" not in html
    assert "Bob" not in html


@pytest.mark.django_db
def test_conversation_list_pages_twenty_at_a_time(alice_client, alice, make_conversation):
    for i in range(23):
        make_conversation(alice, title_text=f"chat number {i:02d}")

    first = page(alice_client.get("/conversations/"))
    second = page(alice_client.get("/conversations/?page=2"))

    assert first.count('class="conversation-card"') == 20
    assert second.count('class="conversation-card"') == 3
    assert "Page 1 of 2" in first
    assert 'href="?page=2"' in first


@pytest.mark.django_db
def test_conversation_list_search_finds_transcript_text(alice_client, alice, make_conversation):
    make_conversation(
        alice,
        EventRecord(kind=Kind.OUTPUT_TRANSCRIPT, text="The capital of Peru is Lima."),
        title_text="geography question",
    )
    make_conversation(alice, title_text="something else")

    html = page(alice_client.get("/conversations/", {"q": "LIMA"}))

    assert "geography question" in html
    assert "something else" not in html
    assert 'value="LIMA"' in html


@pytest.mark.django_db
def test_conversation_list_search_keeps_the_query_across_pages(
    alice_client, alice, make_conversation
):
    for i in range(21):
        make_conversation(alice, title_text=f"pasta recipe {i}")

    html = page(alice_client.get("/conversations/", {"q": "pasta & wine"}))
    assert "No conversations match" in html

    html = page(alice_client.get("/conversations/", {"q": "pasta"}))
    assert 'href="?q=pasta&amp;page=2"' in html


@pytest.mark.django_db
def test_conversation_list_escapes_titles(alice_client, alice, make_conversation):
    make_conversation(alice, title_text="<img src=x onerror=alert(1)>")

    html = page(alice_client.get("/conversations/"))

    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


# --- Transcript ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_conversation_detail_shows_the_timeline(alice_client, alice, make_conversation):
    conversation = make_conversation(
        alice,
        EventRecord(kind=Kind.OUTPUT_TRANSCRIPT, text="Let me check the weather."),
        EventRecord(kind=Kind.TOOL_CALL, data={"name": "get_weather", "args": {"city": "Paris"}}),
        EventRecord(
            kind=Kind.TOOL_RESULT,
            data={"name": "get_weather", "response": {"temperature_c": 21}},
            duration_ms=345,
        ),
        EventRecord(kind=Kind.CODE_EXECUTION, data={"language": "PYTHON", "code": "print(6*7)"}),
        EventRecord(kind=Kind.CODE_RESULT, data={"outcome": "OUTCOME_OK", "output": "42"}),
        EventRecord(
            kind=Kind.GROUNDING,
            data={
                "webSearchQueries": ["paris weather"],
                "groundingChunks": [{"web": {"uri": "https://example.org/w", "title": "Meteo"}}],
            },
        ),
        EventRecord(kind=Kind.INTERRUPTION),
        EventRecord(kind=Kind.ERROR, text="Upstream went away", data={"code": 1011}),
        EventRecord(kind=Kind.USAGE, data={"total_tokens": 99}),
        title_text="What's the weather in Paris?",
    )

    html = page(alice_client.get(f"/conversations/{conversation.pk}/"))

    assert re.search(r'data-role="user"[^>]*>.*?What&#x27;s the weather in Paris\?', html, re.S)
    assert re.search(r'data-role="model"[^>]*>.*?Let me check the weather\.', html, re.S)
    assert "Called tool <code>get_weather</code>" in html
    assert "&quot;city&quot;: &quot;Paris&quot;" in html
    assert "in 345 ms" in html
    assert "&quot;temperature_c&quot;: 21" in html
    assert "print(6*7)" in html
    assert "<samp>42</samp>" in html
    assert '<a href="https://example.org/w"' in html
    assert "Searched for: paris weather" in html
    assert "Interrupted" in html
    assert "Error 1011: Upstream went away" in html
    assert "total tokens 99" not in html  # clean by default: usage is a detail
    html = page(alice_client.get(f"/conversations/{conversation.pk}/?details=1"))
    assert "total tokens 99" in html


@pytest.mark.django_db
def test_conversation_detail_escapes_transcript_text(alice_client, alice, make_conversation):
    conversation = make_conversation(
        alice,
        EventRecord(kind=Kind.MODEL_TEXT, text="<script>alert('model')</script>"),
        EventRecord(kind=Kind.TOOL_CALL, data={"name": "<b>x</b>", "args": {"q": "<i>"}}),
        title_text="<script>alert('user')</script>",
    )

    html = page(alice_client.get(f"/conversations/{conversation.pk}/"))

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;user&#x27;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#x27;model&#x27;)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html


@pytest.mark.django_db
def test_grounding_links_are_only_http(alice_client, alice, make_conversation):
    conversation = make_conversation(
        alice,
        EventRecord(
            kind=Kind.GROUNDING,
            data={"sources": [{"uri": "javascript:alert(1)", "title": "Looks legit"}]},
        ),
    )

    html = page(alice_client.get(f"/conversations/{conversation.pk}/"))

    assert "Looks legit" in html
    assert "javascript:" not in html


@pytest.mark.django_db
def test_another_users_conversation_is_not_found(bob_client, alice, make_conversation):
    conversation = make_conversation(alice, title_text="alice only")

    for name in ["conversation_detail", "conversation_export", "conversation_delete"]:
        url = reverse(f"assistant:{name}", args=[conversation.pk])
        assert bob_client.get(url).status_code == 404, name
    assert bob_client.get(f"/conversations/{uuid.uuid4()}/").status_code == 404


# --- Export --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_downloads_the_conversation_as_json(alice_client, alice, make_conversation):
    conversation = make_conversation(
        alice, EventRecord(kind=Kind.MODEL_TEXT, text="Hi Alice"), title_text="Hi there"
    )

    response = alice_client.get(f"/conversations/{conversation.pk}/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="pastra-conversation-{conversation.pk}.json"'
    )
    data = json.loads(response.content)
    assert data["id"] == str(conversation.pk)
    assert [e["text"] for e in data["events"]] == ["Hi there", "Hi Alice"]
    assert "no-store" in response["Cache-Control"]


# --- Delete --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_asks_for_confirmation_before_deleting(alice_client, alice, make_conversation):
    conversation = make_conversation(alice)

    html = page(alice_client.get(f"/conversations/{conversation.pk}/delete/"))

    assert "cannot be undone" in html
    assert re.search(r'<form[^>]*method="post"', html)
    assert "csrfmiddlewaretoken" in html
    assert Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.django_db
def test_delete_by_post_removes_the_conversation(alice_client, alice, make_conversation):
    conversation = make_conversation(alice, title_text="forget me")

    response = alice_client.post(f"/conversations/{conversation.pk}/delete/", follow=True)

    assert response.redirect_chain == [("/conversations/", 302)]
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert "Deleted “forget me”." in response.content.decode()


@pytest.mark.django_db
def test_delete_of_another_users_conversation_is_refused(bob_client, alice, make_conversation):
    conversation = make_conversation(alice)

    response = bob_client.post(f"/conversations/{conversation.pk}/delete/")

    assert response.status_code == 404
    assert Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.django_db
def test_delete_without_csrf_token_is_refused(alice, make_conversation):
    conversation = make_conversation(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(f"/conversations/{conversation.pk}/delete/")

    assert response.status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).exists()


# --- Tokens --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_created_token_is_shown_once_then_only_its_prefix(alice_client, alice):
    response = alice_client.post("/settings/tokens/", {"name": "genai script"})

    html = page(response)
    raw = re.search(r'data-testid="new-token"[^>]*>(pst_[^<]+)</code>', html).group(1)
    assert services.access_token_authenticate(raw=raw) == alice
    assert "will not be shown again" in html
    assert "no-store" in response["Cache-Control"]

    later = page(alice_client.get("/settings/tokens/"))
    token = AccessToken.objects.get(user=alice)
    assert raw not in later
    assert f"{token.prefix}…" in later
    assert "genai script" in later
    assert raw not in json.dumps(dict(alice_client.session.items()), default=str)


@pytest.mark.django_db
def test_token_needs_a_name(alice_client, alice):
    html = page(alice_client.post("/settings/tokens/", {"name": "   "}))

    assert "This field is required." in html
    assert not AccessToken.objects.filter(user=alice).exists()


@pytest.mark.django_db
def test_token_page_lists_only_own_tokens(alice_client, bob):
    services.access_token_create(user=bob, name="bobs-token")

    assert "bobs-token" not in page(alice_client.get("/settings/tokens/"))


@pytest.mark.django_db
def test_revoke_stops_the_token_working(alice_client, alice):
    token, raw = services.access_token_create(user=alice, name="old laptop")

    response = alice_client.post(f"/settings/tokens/{token.pk}/revoke/", follow=True)

    html = page(response)
    assert "Token revoked" in html
    assert "Revoked" in html
    assert services.access_token_authenticate(raw=raw) is None


@pytest.mark.django_db
def test_revoke_needs_post(alice_client, alice):
    token, raw = services.access_token_create(user=alice, name="t")

    assert alice_client.get(f"/settings/tokens/{token.pk}/revoke/").status_code == 405
    assert services.access_token_authenticate(raw=raw) == alice


@pytest.mark.django_db
def test_revoke_cannot_touch_another_users_token(bob_client, alice):
    token, raw = services.access_token_create(user=alice, name="t")

    bob_client.post(f"/settings/tokens/{token.pk}/revoke/")

    assert services.access_token_authenticate(raw=raw) == alice


def test_service_worker_is_served_from_the_root_without_caching(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"
    assert response["Service-Worker-Allowed"] == "/"


@pytest.mark.django_db
def test_assistant_page_offers_the_server_persona_presets(client, alice):
    client.force_login(alice)
    response = client.get("/")
    config = response.context["config"]
    assert [p["id"] for p in config["personas"]][:2] == ["default", "brief"]
    assert "Puck" in config["voices"]
    assert "api_key" not in json.dumps(config).lower()


def test_favicon_redirects_to_the_app_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith(".png")
    assert "/static/img/pastra-192" in response["Location"]


# --- Issue 14: clean transcripts, Continue, quota, standing instructions, landing ----------


def _times(html: str) -> list[str]:
    return re.findall(r'<time class="event__time"[^>]*>([^<]+)</time>', html)


@pytest.mark.django_db
def test_a_saved_transcript_is_clean_by_default_and_detailed_on_request(
    alice_client, alice, make_conversation
):
    start = timezone.now().replace(second=5, microsecond=0)
    conversation = make_conversation(
        alice,
        EventRecord(kind=Kind.SESSION, text="started", created_at=start),
        EventRecord(kind=Kind.OUTPUT_TRANSCRIPT, text="Hi there.", created_at=start),
        EventRecord(kind=Kind.USAGE, data={"total_tokens": 42}, created_at=start),
        EventRecord(kind=Kind.USER_TEXT, text="Same minute", created_at=start),
        EventRecord(
            kind=Kind.MODEL_TEXT, text="Two minutes on", created_at=start + timedelta(minutes=2)
        ),
        title_text="First words",
    )
    url = f"/conversations/{conversation.pk}/"

    clean = page(alice_client.get(url))
    assert "Session event" not in clean
    assert "started" not in clean
    assert "Usage:" not in clean
    assert "total tokens 42" not in clean
    local = timezone.localtime(start)
    later = local + timedelta(minutes=2)
    # the first item's minute, then the time only where the minute changes (hh:mm)
    first = timezone.localtime(
        Conversation.objects.get(pk=conversation.pk).events.first().created_at
    )
    expected = [first.strftime("%H:%M")]
    if first.strftime("%H:%M") != local.strftime("%H:%M"):
        expected.append(local.strftime("%H:%M"))
    expected.append(later.strftime("%H:%M"))
    assert _times(clean) == expected
    assert "Two minutes on" in clean
    assert "Same minute" in clean
    assert 'href="?details=1"' in clean
    assert "Show details" in clean

    detailed = page(alice_client.get(url + "?details=1"))
    assert "Session event: started" in detailed
    assert "Usage: total tokens 42" in detailed
    assert len(_times(detailed)) == 6  # every item, to the second
    assert local.strftime("%H:%M:%S") in _times(detailed)
    assert "Hide details" in detailed


@pytest.mark.django_db
def test_continue_shows_the_earlier_turns_on_the_talk_page(alice_client, alice, make_conversation):
    conversation = make_conversation(
        alice,
        EventRecord(kind=Kind.SESSION, text="started"),
        EventRecord(kind=Kind.OUTPUT_TRANSCRIPT, text="Paris is sunny today."),
        title_text="Weather in Paris?",
    )
    detail = page(alice_client.get(f"/conversations/{conversation.pk}/"))
    assert f'href="/?conversation={conversation.pk}" data-testid="continue-link"' in detail

    html = page(alice_client.get(f"/?conversation={conversation.pk}"))
    (transcript,) = re.findall(r'<ol[^>]*data-testid="transcript"[^>]*>(.*?)</ol>', html, re.S)
    roles = re.findall(r'data-role="(\w+)"[^>]*data-earlier="true"', transcript)
    assert roles == ["user", "model"]
    assert "Weather in Paris?" in transcript
    assert "Paris is sunny today." in transcript
    assert "started" not in transcript  # clean: no session events

    fresh = page(alice_client.get("/"))
    assert re.search(r'data-testid="transcript"[^>]*></ol>', fresh)


@pytest.mark.django_db
def test_continue_never_shows_another_users_conversation(bob_client, alice, make_conversation):
    conversation = make_conversation(alice, title_text="Alice's secret")
    for query in (f"?conversation={conversation.pk}", "?conversation=not-a-uuid"):
        html = page(bob_client.get("/" + query))
        assert "Alice&#x27;s secret" not in html
        assert re.search(r'data-testid="transcript"[^>]*></ol>', html)


@pytest.mark.django_db
def test_the_talk_page_offers_new_conversation_full_screen_and_the_devices(alice_client):
    html = page(alice_client.get("/"))
    for hook in [
        "new-conversation",
        "fullscreen-button",
        "microphone-select",
        "camera-select",
        "save-instructions",
    ]:
        assert f'data-testid="{hook}"' in html, hook
    assert 'data-url="/quota/"' in html


@pytest.mark.django_db
def test_quota_endpoint_says_what_is_left_today(alice, alice_client):
    alice.daily_seconds = 3600
    alice.save()
    DailyUsage.objects.create(user=alice, day=timezone.localdate(), seconds=610.4)
    assert alice_client.get("/quota/").json() == {"seconds": 2989, "text": "49 min left today"}
    assert Client().get("/quota/").status_code == 302  # signed out: no figures


@pytest.mark.django_db
def test_standing_instructions_are_saved_from_settings_capped_and_validated(alice, alice_client):
    url = reverse("assistant:standing_instructions")
    response = alice_client.post(
        url,
        {"standing_instructions": "  Call me Sam.  ", "next": "/?conversation=x"},
        HTTP_ACCEPT="application/json",
    )
    assert response.json() == {"saved": True}
    alice.refresh_from_db()
    assert alice.standing_instructions == "Call me Sam."

    too_long = alice_client.post(
        url, {"standing_instructions": "x" * 2001}, HTTP_ACCEPT="application/json"
    )
    assert too_long.status_code == 400
    assert "at most 2000 characters" in json.dumps(too_long.json())
    alice.refresh_from_db()
    assert alice.standing_instructions == "Call me Sam."

    # Without JavaScript: a redirect back (never to another site) with a message.
    plain = alice_client.post(url, {"standing_instructions": "Be brief.", "next": "/"})
    assert plain.status_code == 302
    assert plain["Location"] == "/"
    evil = alice_client.post(url, {"standing_instructions": "x", "next": "https://evil.example/"})
    assert evil["Location"] == "/"
    html = page(alice_client.get("/"))
    assert "Your standing instructions apply from your next session" in html
    assert re.search(r'name="standing_instructions"[^>]*>\s*x</textarea>', html)


@pytest.mark.django_db
def test_the_sign_in_page_says_what_pastra_is(client, settings):
    settings.PASTRA_SIGNUP_OPEN = True
    html = page(client.get("/accounts/login/"))
    assert 'data-testid="landing"' in html
    assert "sees, hears" in html
    assert "host yourself" in html
    assert "camera" in html
    assert "screen" in html
    assert 'data-testid="signup-link"' in html
    assert '<label for="id_login">' in html


@pytest.mark.django_db
def test_continue_shows_only_the_end_of_a_long_conversation(alice_client, alice, make_conversation):
    turns = [EventRecord(kind=Kind.USER_TEXT, text=f"turn {i:03}") for i in range(80)]
    conversation = make_conversation(alice, *turns, EventRecord(kind=Kind.USAGE, data={"x": 1}))
    html = page(alice_client.get(f"/?conversation={conversation.pk}"))
    shown = re.findall(r"turn (\d{3})", html)
    assert shown == [f"{i:03}" for i in range(20, 80)]  # the last 60, in order
