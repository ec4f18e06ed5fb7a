"""Ephemeral tokens without a socket: the locked-setup rules (a table), the minting endpoint
`POST /v1alpha/auth_tokens` (Google's request and error shapes), hashing at rest, the
checks a session start makes, the settings page and the admin."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from assistant import services
from assistant.errors import EphemeralTokenRefused
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini import errors
from assistant.live.gemini.constraints import apply_lock, parse_mask, uncovered
from assistant.models import EphemeralToken, SessionLease

MODEL = "gemini-3.8-live"
URL = "/v1alpha/auth_tokens"


@pytest.fixture(autouse=True)
def models(settings):
    settings.PASTRA_MODEL = MODEL
    settings.PASTRA_ALLOWED_MODELS = [MODEL, "gemini-live-text-test"]
    settings.PASTRA_MODEL_ALIASES = {"gemini-live-2.5-flash-preview": MODEL}


# --- the locked setup (pure) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (None, ()),
        ("", ()),
        ("model,generationConfig.temperature", ("model", "generationConfig.temperature")),
        (
            "generationConfig.top_k, system_instruction",
            ("generationConfig.topK", "systemInstruction"),
        ),
        (["tools.0", "tools.1"], ("tools",)),  # the JS SDK's list indexes: the whole list
        ("model,model", ("model",)),
    ],
)
def test_parse_mask(mask, expected):
    assert parse_mask(mask) == expected


@pytest.mark.parametrize("mask", ["a,,b", "generation config", ".model", 7, ["ok", 3], "0"])
def test_parse_mask_refuses_what_is_no_field_path(mask):
    with pytest.raises(ValueError, match="field_mask is invalid"):
        parse_mask(mask)


def test_uncovered_names_the_set_fields_outside_the_mask():
    setup = {"model": "m", "generationConfig": {"temperature": 0.3, "topK": 2}, "tools": [{}]}
    assert uncovered(setup, ("model", "generationConfig.temperature")) == [
        "generationConfig.topK",
        "tools",
    ]
    assert uncovered(setup, ("model", "generationConfig", "tools")) == []


KORE = {"speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}}
PUCK = {"speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}}}
TOKEN_SETUP = {"model": f"models/{MODEL}", "generationConfig": {"temperature": 0.3, **KORE}}
MASK = ("model", "generationConfig.temperature", "generationConfig.speechConfig")


def lock(client, *, setup=TOKEN_SETUP, mask=MASK, model=MODEL):
    return apply_lock(
        client, model=model, setup=setup, mask=mask, resolve=lambda m: m.removeprefix("models/")
    )


@pytest.mark.parametrize(
    ("client", "setup", "mask", "model", "expected"),
    [
        # nothing locked: the client's setup, normalised
        (
            {"model": "x", "generation_config": {"top_k": 1}},
            None,
            (),
            "",
            {"model": "x", "generationConfig": {"topK": 1}},
        ),
        # whole setup locked: the token's, but for the client's resumption handle
        (
            {
                "model": MODEL,
                "generationConfig": {"temperature": 1.0, **PUCK},
                "sessionResumption": {"handle": "h"},
                "outputAudioTranscription": {},
            },
            TOKEN_SETUP,
            (),
            MODEL,
            {**TOKEN_SETUP, "sessionResumption": {"handle": "h"}},
        ),
        # whole setup locked without a model: the client's model
        (
            {"model": "y", "tools": []},
            {"systemInstruction": {"parts": [{"text": "hi"}]}},
            (),
            "",
            {"systemInstruction": {"parts": [{"text": "hi"}]}, "model": "y"},
        ),
        # masked fields from the token, the rest the client's
        (
            {
                "model": MODEL,
                "generationConfig": {"responseModalities": ["AUDIO"]},
                "outputAudioTranscription": {},
            },
            TOKEN_SETUP,
            MASK,
            MODEL,
            {
                "model": f"models/{MODEL}",
                "generationConfig": {"responseModalities": ["AUDIO"], "temperature": 0.3, **KORE},
                "outputAudioTranscription": {},
            },
        ),
        # a masked field set to the token's own value is fine
        (
            {"model": MODEL, "generationConfig": {"temperature": 0.3}},
            TOKEN_SETUP,
            MASK,
            MODEL,
            {"model": f"models/{MODEL}", "generationConfig": {"temperature": 0.3, **KORE}},
        ),
        # a masked field the token leaves unset is locked unset (lock_additional_fields)
        (
            {"model": MODEL},
            TOKEN_SETUP,
            ("model", "generationConfig.topK"),
            MODEL,
            {"model": f"models/{MODEL}"},
        ),
        # an alias of the locked model is the locked model
        ({"model": "models/alias"}, None, (), MODEL, {"model": "models/alias"}),
    ],
)
def test_apply_lock(client, setup, mask, model, expected):
    resolve = {"alias": MODEL}.get
    out = apply_lock(
        client,
        model=model,
        setup=setup,
        mask=mask,
        resolve=lambda m: resolve(m.removeprefix("models/"), m.removeprefix("models/")),
    )
    assert out == expected


@pytest.mark.parametrize(
    ("client", "kind", "reason"),
    [
        (
            {"model": "other"},
            EndKind.MODEL_NOT_ALLOWED,
            f"locked to models/{MODEL}; the setup asked for models/other",
        ),
        (
            {"model": MODEL, "generationConfig": {"temperature": 0.9}},
            EndKind.BAD_MESSAGE,
            "field_mask: generationConfig.temperature",
        ),
        (
            {"model": MODEL, "generation_config": PUCK},
            EndKind.BAD_MESSAGE,
            "field_mask: generationConfig.speechConfig",
        ),
        (
            {"model": MODEL, "generationConfig": {"topK": 3, "temperature": 1}},
            EndKind.BAD_MESSAGE,
            "field_mask: generationConfig.temperature, generationConfig.topK",
        ),
    ],
)
def test_apply_lock_refuses(client, kind, reason):
    mask = (*MASK, "generationConfig.topK")
    with pytest.raises(SessionEnd) as caught:
        lock(client, mask=mask)
    assert caught.value.kind is kind
    assert reason in caught.value.message


def test_apply_lock_refuses_another_model_under_a_whole_setup_lock():
    with pytest.raises(SessionEnd) as caught:
        lock({"model": "gemini-live-text-test"}, mask=())
    assert caught.value.kind is EndKind.MODEL_NOT_ALLOWED
    assert errors.gemini_close(caught.value)[0] == 1008


# --- minting ------------------------------------------------------------------------------------


@pytest.fixture
def pat(alice):
    return services.access_token_create(user=alice, name="backend")


def mint(client, raw, body=None, **extra):
    return client.post(
        URL,
        json.dumps(body if body is not None else {}),
        content_type="application/json",
        headers={"x-goog-api-key": raw} if raw else {},
        **extra,
    )


def google_error(response, code: int, status: str) -> str:
    assert response.status_code == code
    error = response.json()["error"]
    assert error["code"] == code
    assert error["status"] == status
    return error["message"]


@pytest.mark.django_db
def test_mint_with_defaults(client, pat, alice):
    before = timezone.now()
    response = mint(client, pat[1], {"uses": 1})

    assert response.status_code == 200
    reply = response.json()
    assert list(reply) == ["name"]
    name = reply["name"]
    assert name.startswith("auth_tokens/")
    token = EphemeralToken.objects.get()
    assert token.user == alice
    assert token.access_token == pat[0]
    assert token.uses == 1
    assert token.uses_count == 0
    assert token.token_hash == services._hash_token(name)
    assert name not in str(EphemeralToken.objects.values_list().get())
    assert name.removeprefix("auth_tokens/").startswith(token.prefix)
    minutes = (token.expire_time - before).total_seconds() / 60
    assert 29.9 < minutes < 30.1
    seconds = (token.new_session_expire_time - before).total_seconds()
    assert 59 < seconds < 61
    assert token.setup is None
    assert token.field_mask == []
    assert token.model == ""


@pytest.mark.django_db
def test_mint_reads_google_shaped_constraints(client, pat):
    body = {
        "uses": "0",
        "expireTime": (timezone.now() + dt.timedelta(hours=2)).isoformat(),
        "newSessionExpireTime": later(minutes=5),
        "bidiGenerateContentSetup": {
            "model": "models/gemini-live-2.5-flash-preview",
            "generation_config": {"temperature": 0.2},
        },
        "fieldMask": "model,generationConfig.temperature,generationConfig.top_k",
    }
    assert mint(client, pat[1], body).status_code == 200
    token = EphemeralToken.objects.get()
    assert token.uses == 0
    assert token.model == MODEL  # the alias, resolved
    assert token.setup == {"model": f"models/{MODEL}", "generationConfig": {"temperature": 0.2}}
    assert token.field_mask == ["model", "generationConfig.temperature", "generationConfig.topK"]


def later(**delta) -> str:
    return (timezone.now() + dt.timedelta(**delta)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"uses": -1}, "Invalid value at 'uses'"),
        ({"uses": True}, "Invalid value at 'uses'"),
        ({"expireTime": "tomorrow"}, "not an RFC 3339 timestamp"),
        ({"expireTime": "2099-01-01T00:00:00"}, "needs Z or an offset"),
        ({"expireTime": "2020-01-01T00:00:00Z"}, "expireTime must be in the future"),
        ({"expireTime": later(hours=21)}, "less than 20 hours"),
        (
            {"newSessionExpireTime": later(hours=21)},
            "newSessionExpireTime must be less than 20 hours",
        ),
        ({"usesLeft": 1}, 'Unknown name "usesLeft"'),
        (
            {"bidiGenerateContentSetup": {"model": "models/nope"}},
            "models/nope is not found for API version v1alpha",
        ),
        (
            {
                "bidiGenerateContentSetup": {
                    "model": MODEL,
                    "generationConfig": {"temperature": 1},
                },
                "fieldMask": "model",
            },
            f"{errors.REASON_MASK_UNCOVERED}: generationConfig.temperature",
        ),
        (
            {"fieldMask": "model"},
            "field_mask locks model, but bidiGenerateContentSetup names no model",
        ),
        ({"fieldMask": "a..b"}, "field_mask is invalid for BidiGenerateContentSetup"),
        ({"bidiGenerateContentSetup": []}, "Invalid value at 'bidiGenerateContentSetup'"),
        ([], "Expected an object"),
    ],
)
@pytest.mark.django_db
def test_mint_refuses_invalid_requests_with_400(client, pat, body, message):
    response = mint(client, pat[1], body)
    assert message in google_error(response, 400, "INVALID_ARGUMENT")
    assert not EphemeralToken.objects.exists()


@pytest.mark.django_db
def test_mint_allows_up_to_just_under_20_hours(client, pat):
    assert mint(client, pat[1], {"expireTime": later(hours=19, minutes=59)}).status_code == 200
    response = mint(client, pat[1], {"expireTime": later(hours=20, seconds=5)})
    assert "less than 20 hours" in google_error(response, 400, "INVALID_ARGUMENT")


@pytest.mark.django_db
def test_mint_refuses_bad_json(client, pat):
    response = client.post(
        URL, b"{nope", content_type="application/json", headers={"x-goog-api-key": pat[1]}
    )
    assert "Invalid JSON payload" in google_error(response, 400, "INVALID_ARGUMENT")


@pytest.mark.django_db
def test_mint_authentication(client, pat, alice):
    assert google_error(mint(client, ""), 403, "PERMISSION_DENIED") == errors.REASON_NO_KEY
    assert google_error(mint(client, "pst_nope"), 400, "INVALID_ARGUMENT") == errors.REASON_BAD_KEY
    name = mint(client, pat[1]).json()["name"]
    message = google_error(mint(client, name), 403, "PERMISSION_DENIED")
    assert "personal access token" in message
    # the `key` query parameter, as for every Gemini REST call
    assert (
        client.post(f"{URL}?key={pat[1]}", "{}", content_type="application/json").status_code == 200
    )
    services.access_token_revoke(user=alice, token_id=pat[0].pk)
    assert google_error(mint(client, pat[1]), 400, "INVALID_ARGUMENT") == errors.REASON_BAD_KEY
    assert EphemeralToken.objects.count() == 2


@pytest.mark.django_db
def test_mint_needs_no_csrf_token_and_only_post(pat):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert mint(strict, pat[1]).status_code == 200
    assert "POST only" in google_error(strict.get(URL), 405, "UNIMPLEMENTED")


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.django_db
def test_other_api_versions_say_v1alpha(client, pat, version):
    response = client.post(
        f"/{version}/auth_tokens",
        "{}",
        content_type="application/json",
        headers={"x-goog-api-key": pat[1]},
    )
    assert "api_version': 'v1alpha'" in google_error(response, 404, "NOT_FOUND")


@pytest.mark.django_db
def test_minting_prunes_the_owners_long_expired_tokens(client, pat):
    mint(client, pat[1])
    EphemeralToken.objects.update(expire_time=timezone.now() - dt.timedelta(days=2))
    mint(client, pat[1])
    assert EphemeralToken.objects.count() == 1


# --- checks at connect and at session start ---------------------------------------------------


def minted(pat, **overrides):
    now = timezone.now()
    values = {
        "uses": 1,
        "expire_time": now + dt.timedelta(minutes=30),
        "new_session_expire_time": now + dt.timedelta(seconds=60),
        **overrides,
    }
    return services.ephemeral_token_create(access_token=pat[0], **values)


@pytest.mark.django_db
def test_authenticate_refusals(pat, alice):
    record, raw = minted(pat)
    assert services.ephemeral_token_authenticate(raw=raw).user_id == alice.pk

    def reason(raw_token):
        with pytest.raises(EphemeralTokenRefused) as caught:
            services.ephemeral_token_authenticate(raw=raw_token)
        return caught.value.reason

    assert reason("auth_tokens/pse_forged") == EphemeralTokenRefused.INVALID
    assert reason(pat[1]) == EphemeralTokenRefused.INVALID
    EphemeralToken.objects.update(expire_time=timezone.now())
    assert reason(raw) == EphemeralTokenRefused.EXPIRED
    EphemeralToken.objects.update(expire_time=timezone.now() + dt.timedelta(minutes=1))
    services.access_token_revoke(user=alice, token_id=pat[0].pk)
    assert reason(raw) == EphemeralTokenRefused.MINTER_REVOKED
    assert services.ephemeral_token_revoke(user=alice, token_id=record.pk) == []
    assert reason(raw) == EphemeralTokenRefused.REVOKED
    alice.is_active = False
    alice.save()
    assert reason(raw) == EphemeralTokenRefused.INVALID


def acquire(alice, token, conversation_id=None):
    return services.lease_acquire(
        user_id=alice.pk,
        model=MODEL,
        voice="",
        client_kind="sdk",
        conversation_id=conversation_id,
        ephemeral_token_id=token.pk,
    )


@pytest.mark.django_db
def test_session_start_counts_uses_and_resumption_counts_none(pat, alice):
    token, _ = minted(pat, uses=2)
    grant = acquire(alice, token)
    SessionLease.objects.all().delete()
    acquire(alice, token)
    SessionLease.objects.all().delete()
    with pytest.raises(EphemeralTokenRefused) as caught:
        acquire(alice, token)
    assert caught.value.reason == EphemeralTokenRefused.USED_UP
    token.refresh_from_db()
    assert token.uses_count == 2
    # resuming the conversation: no use, and the new-session time no longer applies
    EphemeralToken.objects.update(new_session_expire_time=timezone.now())
    assert acquire(alice, token, grant.conversation_id).resumed
    token.refresh_from_db()
    assert token.uses_count == 2
    lease = SessionLease.objects.get()
    assert lease.ephemeral_token_id == token.pk


@pytest.mark.django_db
def test_session_start_refusals(pat, alice):
    token, _ = minted(pat, uses=0)
    EphemeralToken.objects.update(new_session_expire_time=timezone.now())
    with pytest.raises(EphemeralTokenRefused) as caught:
        acquire(alice, token)
    assert caught.value.reason == EphemeralTokenRefused.NO_NEW_SESSIONS
    # a quota refusal counts no use (one transaction)
    token, _ = minted(pat, uses=1)
    alice.daily_seconds = 0
    alice.save()
    from assistant.errors import DailyAllowanceUsed

    with pytest.raises(DailyAllowanceUsed):
        acquire(alice, token)
    token.refresh_from_db()
    assert token.uses_count == 0


@pytest.mark.parametrize(
    ("reason", "code", "text"),
    [
        ("invalid", 1007, "not valid"),
        ("revoked", 1007, "revoked"),
        ("minter_revoked", 1007, "the access token that minted it was revoked"),
        ("expired", 1007, "expireTime has passed"),
        ("no_new_sessions", 1008, "newSessionExpireTime has passed"),
        ("used_up", 1008, "no uses left"),
    ],
)
def test_each_refusal_has_its_close_code_and_reason(reason, code, text):
    close_code, close_reason = errors.gemini_close(errors.token_refusal(reason, 1))
    assert close_code == code
    assert text in close_reason
    assert len(close_reason.encode()) <= 123


# --- settings page and admin ------------------------------------------------------------------


@pytest.mark.django_db
def test_settings_page_lists_usable_ephemeral_tokens(client, pat, alice, bob):
    token, _ = minted(pat, uses=3, model=MODEL)
    spent, _ = minted(pat)
    EphemeralToken.objects.filter(pk=spent.pk).update(expire_time=timezone.now())
    theirs, _ = minted(services.access_token_create(user=bob, name="bob's"))
    client.force_login(alice)

    page = client.get(reverse("assistant:token_list")).content.decode()

    assert f"auth_tokens/{token.prefix}…" in page
    assert "3 of 3" in page
    assert MODEL in page
    assert "backend" in page
    assert spent.prefix not in page
    assert theirs.prefix not in page
    assert token.token_hash not in page


@pytest.mark.django_db
def test_revoking_an_ephemeral_token_ends_its_live_sessions(client, pat, alice, bob, monkeypatch):
    token, _ = minted(pat, uses=0)
    grant = acquire(alice, token)
    ended = []
    monkeypatch.setattr(
        "assistant.control.end_sessions", lambda **kwargs: ended.append(kwargs) or 1
    )
    client.force_login(bob)
    client.post(reverse("assistant:ephemeral_token_revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is None  # not bob's

    client.force_login(alice)
    response = client.post(reverse("assistant:ephemeral_token_revoke", args=[token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ended == [
        {"conversation_id": grant.conversation_id, "reason": "Its ephemeral token was revoked."}
    ]
    page = client.get(reverse("assistant:token_list")).content.decode()
    assert token.prefix not in page


@pytest.mark.django_db
def test_admin_shows_and_revokes_ephemeral_tokens(client, pat, staff):
    staff.is_superuser = True
    staff.save()
    token, _ = minted(pat)
    client.force_login(staff)

    listing = client.get("/admin/assistant/ephemeraltoken/").content.decode()
    assert token.prefix in listing
    assert token.token_hash not in listing
    detail = client.get(f"/admin/assistant/ephemeraltoken/{token.pk}/change/").content.decode()
    assert token.token_hash not in detail
    client.post(
        "/admin/assistant/ephemeraltoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
