"""WebSocket routes. Each route carries its own auth: cookie + Origin (scheme, host and port:
assistant/origins.py) for the web UI and the staff live view, access token (any Origin) for
the Gemini-compatible path.

Both official SDKs ask for `//ws/google.ai…` (their base URL ends in `/`). URLRouter strips
leading slashes, but under daphne autobahn parses the request target first and takes `//ws`
for a host, so the path arrives as `/google.ai…`: the Gemini route accepts both forms.

The cookie's session and its user are read as Channels' AuthMiddleware reads them (two
queries, the session verified against the user's password hash), on the live path's
database threads (assistant/live/db.py) rather than Channels' single one: a burst of
browsers reconnecting does not queue its sign-in checks behind each other. The session is put
in the scope by compat.CookieSession (Channels' wraps every message sent).

The channel layer is built when these routes are loaded, not by the first socket: building it
imports its backend (channels_redis, redis-py), a tenth of a second or more on the event loop,
and the first socket of a fresh worker is often one of a reconnect storm's."""

from types import SimpleNamespace

from channels.auth import AuthMiddleware
from channels.layers import get_channel_layer
from django.contrib import auth
from django.urls import re_path

from assistant.consumers import GeminiConsumer, LiveConsumer
from assistant.live.compat import CookieSession, OriginGuard
from assistant.live.db import live_db
from assistant.live_view import WatchConsumer


@live_db
def _session_user(scope):
    """The signed-in user of the scope's session, or AnonymousUser (Django's own check)."""
    return auth.get_user(SimpleNamespace(session=scope["session"]))


class _Auth(AuthMiddleware):
    async def resolve_scope(self, scope):
        scope["user"]._wrapped = await _session_user(scope)


def cookie_auth(inner):
    """Channels' AuthMiddlewareStack, with the session and the lookup above."""
    return CookieSession(_Auth(inner))


GEMINI_PATH = (
    r"^(?:ws/)?google\.ai\.generativelanguage\.(?P<version>v1beta|v1alpha|v1)\."
    r"GenerativeService\.(?P<method>BidiGenerateContent|BidiGenerateContentConstrained)$"
)

websocket_urlpatterns = [
    re_path(r"^ws/live/$", OriginGuard(cookie_auth(LiveConsumer.as_asgi()))),
    # Staff watching a conversation's timeline live (assistant/live_view.py).
    re_path(
        r"^ws/admin/conversations/(?P<conversation_id>[0-9a-f-]{36})/$",
        OriginGuard(cookie_auth(WatchConsumer.as_asgi())),
    ),
    # The token is the only credential here (no cookie is read), so any Origin may connect.
    re_path(GEMINI_PATH, GeminiConsumer.as_asgi()),
]

get_channel_layer()  # imports the backend now (above)
