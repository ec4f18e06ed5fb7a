"""All configuration, in one file. Reads the environment once, through pastra_site.env."""

from ipaddress import ip_network
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from pastra_site.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_map,
    env_secret,
    env_str,
    env_text_file,
    is_google_url,
    redis_host,
    sqlite_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core ------------------------------------------------------------------------------------

DEV_SECRET_KEY = "pastra-dev-only-not-a-secret-do-not-deploy"  # noqa: S105 (refused below)
SECRET_KEY = env_secret("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", default=True)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("DEBUG=0 needs a real SECRET_KEY (or SECRET_KEY_FILE).")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",  # before staticfiles: runserver becomes Daphne's ASGI server
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "allauth",
    "allauth.account",
    "assistant",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "assistant.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "pastra_site.urls"
ASGI_APPLICATION = "pastra_site.asgi.application"
WSGI_APPLICATION = None
AUTH_USER_MODEL = "assistant.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "assistant.context_processors.site",
            ],
        },
    },
]

# --- Data ------------------------------------------------------------------------------------

if database_url := env_str("DATABASE_URL"):
    DATABASES = {"default": database_from_url(database_url)}
    # PostgreSQL: a psycopg connection pool per process, so the live path's database calls
    # (token check, session start, per-turn recording) run concurrently instead of queueing
    # on Channels' one database thread (assistant/live/db.py). 0 turns it off.
    if (pool_size := env_int("PASTRA_DB_POOL_SIZE", 8, minimum=0)) and DATABASES["default"][
        "ENGINE"
    ].endswith("postgresql"):
        DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": pool_size}
else:
    DATABASES = {"default": sqlite_database(BASE_DIR / "pastra.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if redis_url := env_str("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [redis_host(redis_url)],
                "prefix": env_str("PASTRA_CHANNEL_PREFIX", "pastra"),
                "capacity": 200,
                "expiry": 30,
            },
        }
    }
else:
    # One process only (dev, plain tests): groups do not cross processes.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache: the login throttle's counters (assistant/throttle.py) and allauth's rate limits.
# On Redis when REDIS_URL is set: shared by every worker, kept across restarts. Otherwise
# LocMem: per process, reset by a restart; for dev and plain tests only.
if redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": env_str("PASTRA_CACHE_PREFIX", "pastra-cache"),
            # A Redis outage must not hang a sign-in page (the throttle then lets it through).
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Accounts (django-allauth) ---------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASTRA_SIGNUP_OPEN = env_bool("PASTRA_SIGNUP_OPEN", default=DEBUG)
# Pastra's account policy (assistant/accounts.py) under the login throttle (assistant/signin.py).
ACCOUNT_ADAPTER = "assistant.signin.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_str("PASTRA_EMAIL_VERIFICATION", "none")
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = True
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login protection for every sign-in form (allauth's and the admin's; assistant/throttle.py).
# Failed sign-ins within a sliding 15-minute window: 5 per (address, account) locks only that
# address out of that account; 30 per address locks that address; 10 per account, from
# anywhere, slows addresses that never signed in to it to one attempt per 10 s (all of them
# together), while addresses that did in the last 30 days are never slowed.
PASTRA_LOGIN_WINDOW_SECONDS = 15 * 60
PASTRA_LOGIN_FAILURES_PER_ADDRESS_ACCOUNT = 5
PASTRA_LOGIN_FAILURES_PER_ADDRESS = 30
PASTRA_LOGIN_FAILURES_PER_ACCOUNT = 10
PASTRA_LOGIN_SLOW_SECONDS = 10
PASTRA_LOGIN_KNOWN_SECONDS = 30 * 24 * 3600
# allauth's own login limits are replaced by the throttle above: its "login_failed" (5 failures
# locked a login name out from every address) and its "login" (which would make sign-in fail
# while Redis is down; the throttle lets attempts through then). Password reset requests keep
# allauth's default limits, on the same cache: 20 a minute per address, 5 a minute per email.
ACCOUNT_RATE_LIMITS = {"login_failed": None, "login": None}

PASTRA_GOOGLE_CLIENT_ID = env_str("PASTRA_GOOGLE_CLIENT_ID")
PASTRA_GOOGLE_CLIENT_SECRET = env_secret("PASTRA_GOOGLE_CLIENT_SECRET")
if PASTRA_GOOGLE_CLIENT_ID:
    INSTALLED_APPS += ["allauth.socialaccount", "allauth.socialaccount.providers.google"]
    SOCIALACCOUNT_PROVIDERS = {
        "google": {
            "APPS": [
                {
                    "client_id": PASTRA_GOOGLE_CLIENT_ID,
                    "secret": PASTRA_GOOGLE_CLIENT_SECRET,
                    "key": "",
                }
            ],
            "SCOPE": ["profile", "email"],
        }
    }

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Pastra <pastra@localhost>")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- HTTP security ---------------------------------------------------------------------------

# Proxies whose X-Forwarded-For is believed (IPs or networks, comma-separated; default none):
# the client's address for login throttling is the right-most X-Forwarded-For entry that is
# not one of them, and only when the request itself comes from one of them.
PASTRA_TRUSTED_PROXIES = env_list("PASTRA_TRUSTED_PROXIES")
for _network in PASTRA_TRUSTED_PROXIES:
    try:
        ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"PASTRA_TRUSTED_PROXIES: {_network!r} is not an IP address or network"
        ) from None
# Behind Cloud Run / a TLS-terminating proxy: trust X-Forwarded-Proto from it.
if env_bool("PASTRA_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
PASTRA_HTTPS = env_bool("PASTRA_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = PASTRA_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = PASTRA_HTTPS
CSRF_COOKIE_SECURE = PASTRA_HTTPS
SECURE_HSTS_SECONDS = env_int("PASTRA_HSTS_SECONDS", 31536000 if PASTRA_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PASTRA_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("PASTRA_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Static files ----------------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "static-collected"
# Plain (non-manifest) storage: ES module imports stay relative and unrewritten.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_MAX_AGE = 3600

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Gemini Live upstream --------------------------------------------------------------------

# Decided once, here (the bridge obeys: assistant/live/upstream.py):
# 1. PASTRA_UPSTREAM_URL set: that URL (an emulator unless it is Google's own host, or unless
#    PASTRA_UPSTREAM_IS_EMULATOR=0 says so, e.g. for a proxy in front of Google);
# 2. else GEMINI_API_KEY set: Google;
# 3. else PASTRA_EMULATOR_URL set (docker compose: its emulator service): that emulator;
# 4. else, with DEBUG=1 only: the built-in emulator, started in-process (`make run` offline);
# 5. else: refuse to start.
GEMINI_API_KEY = env_secret("GEMINI_API_KEY")
GOOGLE_LIVE_URL = "wss://generativelanguage.googleapis.com"
PASTRA_UPSTREAM_URL = env_str("PASTRA_UPSTREAM_URL")
PASTRA_EMULATOR_URL = env_str("PASTRA_EMULATOR_URL")
if not PASTRA_UPSTREAM_URL:
    PASTRA_UPSTREAM_URL = GOOGLE_LIVE_URL if GEMINI_API_KEY else PASTRA_EMULATOR_URL
if not PASTRA_UPSTREAM_URL and not DEBUG:
    raise ImproperlyConfigured(
        "No Gemini Live upstream: set GEMINI_API_KEY (a Gemini API key; Pastra talks to "
        "Google) or PASTRA_UPSTREAM_URL (e.g. ws://emulator:9100 for a Gemini Live emulator). "
        "Only DEBUG=1 starts the built-in emulator."
    )
# Neither given, DEBUG=1: the bridge starts the built-in emulator in-process.
PASTRA_BUILTIN_EMULATOR = not PASTRA_UPSTREAM_URL
PASTRA_UPSTREAM_API_VERSION = env_str("PASTRA_UPSTREAM_API_VERSION", "v1beta")
# The UI's "offline emulator" badge: on whenever the upstream is an emulator, never for Google.
PASTRA_UPSTREAM_IS_EMULATOR = not is_google_url(PASTRA_UPSTREAM_URL) and env_bool(
    "PASTRA_UPSTREAM_IS_EMULATOR", default=True
)
PASTRA_MODEL = env_str("PASTRA_MODEL", "gemini-3.8-live").removeprefix("models/")
PASTRA_ALLOWED_MODELS = [
    m.removeprefix("models/") for m in env_list("PASTRA_ALLOWED_MODELS", PASTRA_MODEL)
]
_RETIRED_MODELS = (
    "gemini-2.0-flash-exp",
    "gemini-2.0-flash-live-001",
    "gemini-live-2.5-flash-preview",
    "gemini-2.5-flash-preview-native-audio-dialog",
    "gemini-2.5-flash-exp-native-audio-thinking-dialog",
    "gemini-2.5-flash-native-audio-preview-09-2025",
)
PASTRA_MODEL_ALIASES = {
    k.removeprefix("models/"): v.removeprefix("models/")
    for k, v in env_map(
        "PASTRA_MODEL_ALIASES", ",".join(f"{old}={PASTRA_MODEL}" for old in _RETIRED_MODELS)
    ).items()
}
PASTRA_VOICE = env_str("PASTRA_VOICE", "Puck")
PASTRA_SYSTEM_INSTRUCTION = env_str(
    "PASTRA_SYSTEM_INSTRUCTION",
    "You are Pastra, a friendly real-time assistant that can see, hear and talk. "
    "Answer briefly and naturally; say when you use a tool.",
)
# A text file whose content is the base instruction (the tutorial's system-instructions.txt):
# it wins over PASTRA_SYSTEM_INSTRUCTION; a missing, unreadable or empty file stops the start.
PASTRA_SYSTEM_INSTRUCTION_FILE = env_str("PASTRA_SYSTEM_INSTRUCTION_FILE")
if PASTRA_SYSTEM_INSTRUCTION_FILE:
    PASTRA_SYSTEM_INSTRUCTION = env_text_file("PASTRA_SYSTEM_INSTRUCTION_FILE")

# --- Limits ----------------------------------------------------------------------------------

PASTRA_MAX_SESSIONS_PER_USER = env_int("PASTRA_MAX_SESSIONS_PER_USER", 2, minimum=1)
PASTRA_DAILY_SECONDS_PER_USER = env_int("PASTRA_DAILY_SECONDS_PER_USER", 3600, minimum=0)
PASTRA_SESSION_IDLE_SECONDS = env_int("PASTRA_SESSION_IDLE_SECONDS", 300, minimum=10)

# --- Tools -----------------------------------------------------------------------------------

# get_stock_price is declared only with a key; calculate only where the model has no code execution.
PASTRA_TOOLS = env_list("PASTRA_TOOLS", "get_weather,web_search,get_stock_price,calculate")
# Google-run tools the deployment offers: each is added to every session whose model supports
# it (assistant/live/gemini/models.py) and may be asked for by Gemini-path clients; others
# are refused by name. Search grounding is on by default (the tutorial used it for news).
PASTRA_CODE_EXECUTION = env_bool("PASTRA_CODE_EXECUTION", default=True)
PASTRA_GOOGLE_SEARCH = env_bool("PASTRA_GOOGLE_SEARCH", default=True)
PASTRA_URL_CONTEXT = env_bool("PASTRA_URL_CONTEXT", default=False)
PASTRA_TOOL_TIMEOUT_SECONDS = env_float("PASTRA_TOOL_TIMEOUT_SECONDS", 8.0, minimum=0.1)
PASTRA_HTTP_TIMEOUT_SECONDS = env_float("PASTRA_HTTP_TIMEOUT_SECONDS", 6.0, minimum=0.1)
PASTRA_WEATHER_GEOCODE_URL = env_str(
    "PASTRA_WEATHER_GEOCODE_URL", "https://geocoding-api.open-meteo.com/v1/search"
)
PASTRA_WEATHER_FORECAST_URL = env_str(
    "PASTRA_WEATHER_FORECAST_URL", "https://api.open-meteo.com/v1/forecast"
)
PASTRA_SEARCH_BACKEND = env_str("PASTRA_SEARCH_BACKEND", "wikipedia")
PASTRA_SEARCH_URL = env_str("PASTRA_SEARCH_URL")
PASTRA_SEARCH_API_KEY = env_secret("PASTRA_SEARCH_API_KEY")
PASTRA_STOCK_API_KEY = env_secret("PASTRA_STOCK_API_KEY")
PASTRA_STOCK_URL = env_str("PASTRA_STOCK_URL", "https://finnhub.io/api/v1/quote")
# MCP tool servers (staff add them in /admin/): how long a session start waits for a server's
# tool list when it is not cached, and how long a listing is cached (docs/tools.md).
PASTRA_MCP_LIST_TIMEOUT_SECONDS = env_float("PASTRA_MCP_LIST_TIMEOUT_SECONDS", 2.0, minimum=0.1)
PASTRA_MCP_CACHE_SECONDS = env_int("PASTRA_MCP_CACHE_SECONDS", 60, minimum=1)

# --- Operations ------------------------------------------------------------------------------

PASTRA_METRICS_TOKEN = env_secret("PASTRA_METRICS_TOKEN")
# On SIGTERM, everything (close frames, transcript flushes) must fit in this many seconds; the
# process exits right after (Cloud Run and `docker stop` kill 10 s after SIGTERM).
PASTRA_DRAIN_SECONDS = env_float("PASTRA_DRAIN_SECONDS", 7.0, minimum=0.0)
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "pastra_site.logs.ContextFilter"}},
    "formatters": {
        "plain": {
            "()": "pastra_site.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "pastra_site.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "assistant": {"level": LOG_LEVEL},
        "gemini_emulator": {"level": LOG_LEVEL},
        "django.request": {"level": "ERROR"},
    },
}
