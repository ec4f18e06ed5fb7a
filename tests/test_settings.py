"""Configuration comes from the environment, parsed strictly: bad values stop the process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pastra_site import env

ROOT = Path(__file__).resolve().parent.parent
PROD_SECRET = "x9!Jr2@pLq7#Vd4$Wm8%Tz3^Kc6&Hn1*Bf5(Gs0)Ya-Qe7+Ux2=Ro4~Li9"  # 58 chars


def run_django(args: list[str], **environ: str) -> subprocess.CompletedProcess:
    """Run manage.py in a clean child process with only the given Pastra/Django env vars."""
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "SYSTEMROOT"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_value(name: str, **environ: str):
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({'settings.' + name if name.isidentifier() else name}, default=str))"
    )
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "pastra_site.settings", **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("off", False)])
def test_env_bool_accepts_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("PASTRA_X", raw)
    assert env.env_bool("PASTRA_X", default=not expected) is expected


def test_env_bool_rejects_anything_else_by_name(monkeypatch):
    monkeypatch.setenv("PASTRA_X", "maybe")
    with pytest.raises(ImproperlyConfigured, match="PASTRA_X='maybe'"):
        env.env_bool("PASTRA_X", default=False)


def test_env_int_rejects_words_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("PASTRA_N", "two")
    with pytest.raises(ImproperlyConfigured, match="expected an integer"):
        env.env_int("PASTRA_N", 2)
    monkeypatch.setenv("PASTRA_N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("PASTRA_N", 2, minimum=1)


def test_env_int_uses_the_default_when_unset_or_blank(monkeypatch):
    monkeypatch.delenv("PASTRA_N", raising=False)
    assert env.env_int("PASTRA_N", 7) == 7
    monkeypatch.setenv("PASTRA_N", " ")
    assert env.env_int("PASTRA_N", 7) == 7


def test_env_map_parses_aliases_and_rejects_a_pair_without_equals(monkeypatch):
    monkeypatch.setenv("PASTRA_MAP", "a=b, c = d")
    assert env.env_map("PASTRA_MAP") == {"a": "b", "c": "d"}
    monkeypatch.setenv("PASTRA_MAP", "a=b,c")
    with pytest.raises(ImproperlyConfigured, match="old=new"):
        env.env_map("PASTRA_MAP")


def test_env_secret_prefers_the_file_and_fails_loudly_when_it_is_missing(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("from-file\n")
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    monkeypatch.setenv("GEMINI_API_KEY_FILE", str(secret))
    assert env.env_secret("GEMINI_API_KEY") == "from-file"
    monkeypatch.setenv("GEMINI_API_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ImproperlyConfigured, match="cannot read GEMINI_API_KEY_FILE"):
        env.env_secret("GEMINI_API_KEY")


def test_database_url_for_postgres_becomes_a_psycopg_entry():
    db = env.database_from_url("postgres://u:p%40ss@db.internal:6543/pastra?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("pastra", "u", "p@ss")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_database_url_for_sqlite_and_bad_urls():
    assert str(env.database_from_url("sqlite:////tmp/x.sqlite3")["NAME"]) == "/tmp/x.sqlite3"
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme"):
        env.database_from_url("mysql://h/db")
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        env.database_from_url("postgres://h:5432/")


def test_redis_url_switches_to_channels_redis_without_socket_timeout():
    layers = settings_value("CHANNEL_LAYERS", REDIS_URL="redis://127.0.0.1:6379/3")
    config = layers["default"]
    assert config["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    # redis-py 8 otherwise kills channels-redis' blocking receive every 5 s.
    assert config["CONFIG"]["hosts"] == [
        {"address": "redis://127.0.0.1:6379/3", "socket_timeout": None, "socket_connect_timeout": 5}
    ]


def test_defaults_are_sqlite_and_the_in_memory_layer():
    assert settings_value("CHANNEL_LAYERS")["default"]["BACKEND"].endswith("InMemoryChannelLayer")
    assert settings_value("DATABASES")["default"]["ENGINE"] == "django.db.backends.sqlite3"


def test_model_aliases_rewrite_retired_models_to_the_default():
    aliases = settings_value("PASTRA_MODEL_ALIASES", PASTRA_MODEL="models/gemini-x-live")
    assert aliases["gemini-2.0-flash-live-001"] == "gemini-x-live"
    assert settings_value("PASTRA_ALLOWED_MODELS", PASTRA_MODEL="gemini-x-live") == [
        "gemini-x-live"
    ]


def test_debug_off_refuses_the_development_secret():
    result = run_django(["check"], DEBUG="0")
    assert result.returncode != 0
    assert "DEBUG=0 needs a real SECRET_KEY" in result.stderr


def test_a_bad_boolean_stops_the_process_with_the_variable_named():
    result = run_django(["check"], PASTRA_SIGNUP_OPEN="sometimes")
    assert result.returncode != 0
    assert "PASTRA_SIGNUP_OPEN='sometimes'" in result.stderr


def test_check_deploy_with_production_settings_prints_no_warnings(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(PROD_SECRET)
    result = run_django(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        SECRET_KEY_FILE=str(secret_file),
        ALLOWED_HOSTS="pastra.example",
        CSRF_TRUSTED_ORIGINS="https://pastra.example",
        PASTRA_HTTPS="1",
        GEMINI_API_KEY="test-gemini-key",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr + result.stdout


def test_sign_up_is_closed_by_default_in_production_and_open_in_development(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(PROD_SECRET)
    production = {
        "DEBUG": "0",
        "SECRET_KEY_FILE": str(secret),
        "ALLOWED_HOSTS": "x.example",
        "GEMINI_API_KEY": "test-gemini-key",
    }
    assert settings_value("PASTRA_SIGNUP_OPEN", **production) is False
    assert settings_value("PASTRA_SIGNUP_OPEN", DEBUG="1") is True
    assert settings_value("PASTRA_SIGNUP_OPEN", **production, PASTRA_SIGNUP_OPEN="1") is True
    backend = "django.core.mail.backends.smtp.EmailBackend"
    assert settings_value("EMAIL_BACKEND", DEBUG="1", EMAIL_BACKEND=backend) == backend


# --- the upstream, decided once at start -----------------------------------------------------

GOOGLE = "wss://generativelanguage.googleapis.com"


def upstream(**environ: str) -> dict:
    """The three upstream settings a child process with this environment decides on."""
    names = ("PASTRA_UPSTREAM_URL", "PASTRA_BUILTIN_EMULATOR", "PASTRA_UPSTREAM_IS_EMULATOR")
    expression = "{" + ", ".join(f"{n!r}: settings.{n}" for n in names) + "}"
    return settings_value(expression, **environ)


def test_debug_off_without_key_or_upstream_refuses_to_start_and_names_both(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(PROD_SECRET)
    result = run_django(["check"], DEBUG="0", SECRET_KEY_FILE=str(secret))
    assert result.returncode != 0
    assert "No Gemini Live upstream" in result.stderr
    assert "GEMINI_API_KEY" in result.stderr
    assert "PASTRA_UPSTREAM_URL" in result.stderr


def test_only_debug_starts_the_built_in_emulator(tmp_path):
    assert upstream(DEBUG="1") == {
        "PASTRA_UPSTREAM_URL": "",
        "PASTRA_BUILTIN_EMULATOR": True,
        "PASTRA_UPSTREAM_IS_EMULATOR": True,
    }
    secret = tmp_path / "secret"
    secret.write_text(PROD_SECRET)
    production = {"DEBUG": "0", "SECRET_KEY_FILE": str(secret)}
    emulator = upstream(**production, PASTRA_EMULATOR_URL="ws://emulator:9100")
    assert emulator == {
        "PASTRA_UPSTREAM_URL": "ws://emulator:9100",
        "PASTRA_BUILTIN_EMULATOR": False,
        "PASTRA_UPSTREAM_IS_EMULATOR": True,
    }


def test_a_key_means_google_and_google_never_shows_the_emulator_badge():
    google = {
        "PASTRA_UPSTREAM_URL": GOOGLE,
        "PASTRA_BUILTIN_EMULATOR": False,
        "PASTRA_UPSTREAM_IS_EMULATOR": False,
    }
    assert upstream(GEMINI_API_KEY="k") == google
    # An emulator URL is only the fallback for no key; the badge cannot be forced onto Google.
    assert upstream(GEMINI_API_KEY="k", PASTRA_EMULATOR_URL="ws://emulator:9100") == google
    assert upstream(GEMINI_API_KEY="k", PASTRA_UPSTREAM_IS_EMULATOR="1") == google


def test_an_explicit_upstream_url_wins_and_is_an_emulator_unless_it_is_google():
    explicit = upstream(GEMINI_API_KEY="k", PASTRA_UPSTREAM_URL="ws://127.0.0.1:9100")
    assert explicit == {
        "PASTRA_UPSTREAM_URL": "ws://127.0.0.1:9100",
        "PASTRA_BUILTIN_EMULATOR": False,
        "PASTRA_UPSTREAM_IS_EMULATOR": True,  # the key goes there, and the badge says so
    }
    proxy = upstream(PASTRA_UPSTREAM_URL="wss://proxy.example", PASTRA_UPSTREAM_IS_EMULATOR="0")
    assert proxy["PASTRA_UPSTREAM_IS_EMULATOR"] is False
    regional = upstream(PASTRA_UPSTREAM_URL="wss://europe-generativelanguage.googleapis.com")
    assert regional["PASTRA_UPSTREAM_IS_EMULATOR"] is False
