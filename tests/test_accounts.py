"""Accounts through django-allauth, in Pastra's own templates."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

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
    assert "/static/css/app.css" in html
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
