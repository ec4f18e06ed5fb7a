"""Typed environment readers: the only place settings touch os.environ. Bad values fail loudly."""

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_map(name: str, default: str = "") -> dict[str, str]:
    """`a=b,c=d` → {"a": "b", "c": "d"}; a pair without `=` is an error."""
    result = {}
    for pair in env_list(name, default):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ImproperlyConfigured(f"{name}: {pair!r} is not of the form old=new")
        result[key.strip()] = value.strip()
    return result


def env_secret(name: str, default: str = "") -> str:
    """Value of NAME, or the contents of the file named by NAME_FILE (Docker/Cloud Run secrets)."""
    if path := os.environ.get(f"{name}_FILE", "").strip():
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"cannot read {name}_FILE={path}: {exc.strerror}") from exc
    return os.environ.get(name, default).strip()


def env_text_file(name: str) -> str:
    """The text of the file that NAME names (UTF-8, stripped); missing, unreadable or empty
    stops the process with NAME and the path in the message."""
    path = os.environ.get(name, "").strip()
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ImproperlyConfigured(f"cannot read {name}={path}: {why}") from exc
    if not text:
        raise ImproperlyConfigured(f"{name}={path} is empty")
    return text


def database_from_url(url: str) -> dict:
    """`postgres://user:pass@host:port/db?sslmode=require` or `sqlite:///path` → DATABASES entry."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL: the PostgreSQL URL names no database")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured("DATABASE_URL: the port is not a number") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": True,
            # Explicit, so a live-server child process finds the same test database.
            "TEST": {"NAME": f"test_{name}"},
        }
    if scheme == "sqlite":
        path = unquote(parts.path)
        # sqlite:///relative/path and sqlite:////abs/path: drop the authority's slash.
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ImproperlyConfigured("DATABASE_URL: the SQLite URL names no file")
        return sqlite_database(Path(path))
    raise ImproperlyConfigured(f"DATABASE_URL: unsupported scheme {scheme!r} (postgres or sqlite)")


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        # Async consumers write from worker threads: wait for locks instead of failing.
        "OPTIONS": {"init_command": "PRAGMA busy_timeout = 5000;", "transaction_mode": "IMMEDIATE"},
        # Live-server browser tests run the ASGI server in a child process: no :memory:.
        "TEST": {"NAME": path.with_name(path.stem + "-test" + path.suffix)},
    }


def redis_host(url: str) -> dict:
    """channels-redis host entry. socket_timeout=None: redis-py 8 would otherwise kill receives."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL={url!r}: expected redis://, rediss:// or unix://")
    return {"address": url, "socket_timeout": None, "socket_connect_timeout": 5}


def is_google_url(url: str) -> bool:
    """Whether a Live upstream URL is Google's own service (a `googleapis.com` host)."""
    host = (urlsplit(url).hostname or "").lower()
    return host == "googleapis.com" or host.endswith(".googleapis.com")
