"""Accounts through django-allauth, in Pastra's own templates."""

import json
import os
import re
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from tests.test_settings import ROOT

PASSWORD = "correct horse battery staple"  # the conftest make_user default
NEW_PASSWORD = "a brand new long passphrase"


def signed_in_user(client):
    return client.get("/").wsgi_request.user


@pytest.mark.django_db
def test_signup_creates_an_account_and_signs_in_when_open(client, settings):
    settings.PASTRA_SIGNUP_OPEN = True

    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert get_user_model().objects.filter(username="carol").exists()
    assert signed_in_user(client).get_username() == "carol"


@pytest.mark.django_db
def test_signup_shows_the_form_when_open(client, settings):
    settings.PASTRA_SIGNUP_OPEN = True

    html = client.get("/accounts/signup/").content.decode()

    assert "Create an account" in html
    assert 'name="password1"' in html


@pytest.mark.django_db
def test_signup_is_closed_when_switched_off(client, settings):
    settings.PASTRA_SIGNUP_OPEN = False

    page = client.get("/accounts/signup/").content.decode()
    response = client.post(
        "/accounts/signup/",
        {"username": "mallory", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert "Sign-up is closed" in page
    assert 'name="password1"' not in page
    assert "Sign-up is closed" in response.content.decode()
    assert not get_user_model().objects.filter(username="mallory").exists()


@pytest.mark.django_db
def test_signup_rejects_mismatched_passwords_with_a_visible_error(client, settings):
    settings.PASTRA_SIGNUP_OPEN = True

    response = client.post(
        "/accounts/signup/",
        {"username": "dave", "password1": NEW_PASSWORD, "password2": "something else entirely"},
    )

    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert not get_user_model().objects.filter(username="dave").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("login", ["alice", "alice@example.com"])
def test_login_with_username_or_email_lands_on_the_assistant(client, alice, login):
    response = client.post("/accounts/login/", {"login": login, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert signed_in_user(client) == alice


@pytest.mark.django_db
def test_login_returns_to_the_page_asked_for(client, alice):
    response = client.post(
        "/accounts/login/?next=/conversations/", {"login": "alice", "password": PASSWORD}
    )

    assert response["Location"] == "/conversations/"


@pytest.mark.django_db
def test_login_with_a_wrong_password_explains_and_stays_out(client, alice):
    response = client.post("/accounts/login/", {"login": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert not signed_in_user(client).is_authenticated


@pytest.mark.django_db
def test_login_page_is_pastra_styled_and_accessible(client):
    html = client.get("/accounts/login/").content.decode()

    assert '<html lang="en">' in html
    assert 'class="skip-link" href="#main"' in html
    assert "/static/css/base.css" in html
    assert '<label for="id_login">' in html
    assert '<label for="id_password">' in html


@pytest.mark.django_db
def test_login_page_has_no_google_button_without_a_client_id(client, settings):
    assert not settings.PASTRA_GOOGLE_CLIENT_ID

    assert "Sign in with Google" not in client.get("/accounts/login/").content.decode()


@pytest.mark.django_db
def test_logout_by_post_signs_out(client, alice):
    client.force_login(alice)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert not signed_in_user(client).is_authenticated


@pytest.mark.django_db
def test_logout_by_get_only_asks_for_confirmation(client, alice):
    client.force_login(alice)

    html = client.get("/accounts/logout/").content.decode()

    assert re.search(r'<form method="post" action="/accounts/logout/"', html)
    assert signed_in_user(client) == alice


@pytest.mark.django_db
def test_password_change_takes_the_new_password(client, alice):
    client.force_login(alice)

    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_password_change_requires_login(client):
    response = client.get("/accounts/password/change/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_password_reset_emails_a_link_that_sets_a_new_password(client, alice):
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})

    assert response.status_code == 302
    assert "Check your email" in client.get(response["Location"]).content.decode()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)

    form_page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_reveals_nothing(client, alice):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert all("alice" not in m.body for m in mail.outbox)


@pytest.mark.django_db
@pytest.mark.parametrize("open_", [True, False])
def test_the_sign_up_link_shows_only_while_sign_up_is_open(client, settings, open_):
    settings.PASTRA_SIGNUP_OPEN = open_
    page = client.get("/accounts/login/").content.decode()
    assert ('href="/accounts/signup/"' in page) is open_


GOOGLE_CLIENT_ID = "pastra-test.apps.googleusercontent.com"
GOOGLE_LOGIN_SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", interactive=False, verbosity=0)
client = Client(SERVER_NAME="testserver")
login = client.get("/accounts/login/")
signup = client.get("/accounts/signup/")
confirm = client.get("/accounts/google/login/?process=login")
start = client.post("/accounts/google/login/?process=login")
print(json.dumps({
    "login": [login.status_code, login.content.decode()],
    "signup": [signup.status_code, signup.content.decode()],
    "confirm": [confirm.status_code, confirm.content.decode()],
    "start": [start.status_code, start.get("Location", "")],
}))
"""


def test_google_sign_in_appears_and_redirects_to_google_when_configured(tmp_path):
    """Settings install allauth.socialaccount only with a client id: a child process needed."""
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    result = subprocess.run(
        [sys.executable, "-c", GOOGLE_LOGIN_SCRIPT],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "pastra_site.settings",
            "DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "PASTRA_GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
            "PASTRA_GOOGLE_CLIENT_SECRET": "not-a-real-secret",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pages = json.loads(result.stdout.strip().splitlines()[-1])

    button = re.compile(r'<a class="btn btn--google[^"]*" href="([^"]+)">Sign in with Google</a>')
    for page in ("login", "signup"):  # sign-up is open with DEBUG=1
        status, html = pages[page]
        assert status == 200
        found = button.search(html)
        assert found, f"no Google button on /accounts/{page}/"
        assert found.group(1) == "/accounts/google/login/?process=login"

    status, html = pages["confirm"]  # GET only asks; the redirect needs a POST (CSRF-safe)
    assert status == 200
    assert re.search(r'<form method="post"', html)
    assert 'name="csrfmiddlewaretoken"' in html

    status, location = pages["start"]
    assert status == 302
    target = urlsplit(location)
    assert (target.scheme, target.netloc) == ("https", "accounts.google.com")
    query = parse_qs(target.query)
    assert query["client_id"] == [GOOGLE_CLIENT_ID]
    assert query["redirect_uri"] == ["http://testserver/accounts/google/login/callback/"]
    assert query["response_type"] == ["code"]
    assert set(query["scope"][0].split()) == {"profile", "email"}
    assert query["state"][0]
    assert "not-a-real-secret" not in location
