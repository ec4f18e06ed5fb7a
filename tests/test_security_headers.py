"""CSP, Permissions-Policy and COOP on every page, and pages that work under that CSP."""

from html.parser import HTMLParser

import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient

from assistant import services
from assistant.middleware import SecurityHeadersMiddleware
from assistant.services import EventRecord


def csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    directives = [d.split() for d in policy.split(";") if d.strip()]
    return {name: values for name, *values in directives}


class InlineCode(HTMLParser):
    """Collects what a `script-src 'self'; style-src 'self'` policy would block."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> inline event handler")
        if "style" in attrs:
            self.found.append(f"<{tag} style=…> inline style")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script" and "src" not in attrs:
            kind = attrs.get("type") or "text/javascript"
            if kind not in ("application/json", "application/ld+json"):
                self.found.append("inline <script>")
        if tag == "a" and (attrs.get("href") or "").strip().lower().startswith("javascript:"):
            self.found.append("javascript: link")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


@pytest.fixture
def conversation(alice):
    conversation = services.conversation_start(user_id=alice.pk, model="gemini-test")
    services.conversation_record(
        conversation_id=conversation.pk,
        events=[
            EventRecord(kind="user_text", text="hello <script>x()</script>"),
            EventRecord(kind="tool_call", data={"name": "get_weather", "args": {"city": "Rome"}}),
        ],
    )
    return conversation


# --- Headers -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/admin/login/", "/healthz"])
def test_security_headers_are_on_every_response(client, url):
    response = client.get(url)

    assert "Content-Security-Policy" in response
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    permissions = response["Permissions-Policy"]
    for feature in ["camera", "microphone", "display-capture"]:
        assert f"{feature}=(self)" in permissions


@pytest.mark.django_db
def test_csp_is_strict(client):
    policy = csp(client.get("/accounts/login/"))

    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert set(policy["img-src"]) == {"'self'", "data:", "blob:"}
    assert set(policy["media-src"]) == {"'self'", "blob:"}
    assert set(policy["worker-src"]) == {"'self'", "blob:"}
    assert "unsafe-inline" not in client.get("/accounts/login/")["Content-Security-Policy"]
    assert "unsafe-eval" not in client.get("/accounts/login/")["Content-Security-Policy"]


@pytest.mark.django_db
def test_csp_lets_the_page_open_sockets_only_to_its_own_host(client):
    policy = csp(client.get("/accounts/login/", HTTP_HOST="localhost:8000"))

    assert set(policy["connect-src"]) == {"'self'", "ws://localhost:8000", "wss://localhost:8000"}


def test_a_disallowed_host_never_reaches_the_policy():
    request = HttpRequest()
    request.META = {"HTTP_HOST": "evil.example", "SERVER_NAME": "x", "SERVER_PORT": "80"}

    response = SecurityHeadersMiddleware(lambda request: HttpResponse())(request)

    assert csp(response)["connect-src"] == ["'self'"]


def test_a_view_can_set_its_own_policy():
    def view(request):
        response = HttpResponse()
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    request = HttpRequest()
    request.META = {"SERVER_NAME": "testserver", "SERVER_PORT": "80"}

    response = SecurityHeadersMiddleware(view)(request)

    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


async def test_middleware_runs_natively_in_async_stacks():
    async def view(request):
        return HttpResponse("ok")

    middleware = SecurityHeadersMiddleware(view)
    request = HttpRequest()
    request.META = {"SERVER_NAME": "testserver", "SERVER_PORT": "80"}

    assert iscoroutinefunction(middleware)
    response = await middleware(request)
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_middleware_stays_sync_in_sync_stacks():
    middleware = SecurityHeadersMiddleware(lambda request: HttpResponse())

    assert not iscoroutinefunction(middleware)
    assert SecurityHeadersMiddleware.sync_capable
    assert SecurityHeadersMiddleware.async_capable


@pytest.mark.django_db(transaction=True)
async def test_headers_are_set_on_asgi_requests():
    response = await AsyncClient().get("/healthz")

    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


# --- Pages work under the policy -----------------------------------------------------------


@pytest.mark.django_db
def test_private_pages_are_never_cached(client, alice, conversation):
    """A shared browser or a proxy must not keep a transcript, the history or the tokens."""
    client.force_login(alice)
    pages = [
        "/",
        "/conversations/",
        f"/conversations/{conversation.pk}/",
        f"/conversations/{conversation.pk}/export/",
        "/settings/tokens/",
        "/accounts/password/change/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
    assert "no-store" in client.get("/admin/").get("Cache-Control", "no-store")  # staff only


@pytest.mark.django_db
def test_a_view_keeps_its_own_caching_even_when_logged_in(client, alice):
    client.force_login(alice)
    assert client.get("/sw.js")["Cache-Control"] == "no-cache"  # revalidated, not no-store


@pytest.mark.django_db
def test_pastra_pages_have_no_inline_code(client, alice, conversation, settings):
    settings.PASTRA_SIGNUP_OPEN = True
    anonymous_pages = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
    for url in anonymous_pages:
        assert inline_code(client.get(url).content.decode()) == [], url

    client.force_login(alice)
    services.access_token_create(user=alice, name="t")
    pages = [
        "/",
        "/conversations/",
        "/conversations/?q=hello",
        f"/conversations/{conversation.pk}/",
        f"/conversations/{conversation.pk}/delete/",
        "/settings/tokens/",
        "/accounts/password/change/",
        "/accounts/logout/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert inline_code(response.content.decode()) == [], url
    created = client.post("/settings/tokens/", {"name": "another"})
    assert inline_code(created.content.decode()) == []


@pytest.mark.django_db
def test_admin_pages_have_no_inline_code(client, staff, alice, conversation):
    token, _ = services.access_token_create(user=alice, name="t")
    assert inline_code(client.get("/admin/login/").content.decode()) == []

    client.force_login(staff)
    pages = [
        "/admin/",
        "/admin/assistant/conversation/",
        "/admin/assistant/conversation/?q=hello",
        f"/admin/assistant/conversation/{conversation.pk}/change/",
        f"/admin/assistant/conversation/{conversation.pk}/delete/",
        "/admin/assistant/user/",
        f"/admin/assistant/user/{alice.pk}/change/",
        "/admin/assistant/user/add/",
        f"/admin/assistant/user/{alice.pk}/password/",
        "/admin/assistant/accesstoken/",
        f"/admin/assistant/accesstoken/{token.pk}/change/",
        "/admin/auth/group/add/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        assert inline_code(response.content.decode()) == [], url


@pytest.mark.parametrize(("debug", "has_csp"), [(True, False), (False, True)])
def test_debug_error_pages_keep_their_inline_styles(settings, debug, has_csp):
    settings.DEBUG = debug
    request = HttpRequest()
    request.META = {"SERVER_NAME": "testserver", "SERVER_PORT": "80"}

    response = SecurityHeadersMiddleware(lambda request: HttpResponse(status=500))(request)

    assert ("Content-Security-Policy" in response) is has_csp
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
