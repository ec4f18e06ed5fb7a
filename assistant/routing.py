"""WebSocket routes. Each route carries its own auth: cookie + Origin (scheme, host and port:
assistant/origins.py) for the web UI and the staff live view, access token (any Origin) for
the Gemini-compatible path.

Both official SDKs ask for `//ws/google.ai…` (their base URL ends in `/`). URLRouter strips
leading slashes, but under daphne autobahn parses the request target first and takes `//ws`
for a host, so the path arrives as `/google.ai…`: the Gemini route accepts both forms."""

from channels.auth import AuthMiddlewareStack
from django.urls import re_path

from assistant.consumers import GeminiConsumer, LiveConsumer
from assistant.live.compat import OriginGuard
from assistant.live_view import WatchConsumer

GEMINI_PATH = (
    r"^(?:ws/)?google\.ai\.generativelanguage\.(?P<version>v1beta|v1alpha|v1)\."
    r"GenerativeService\.(?P<method>BidiGenerateContent|BidiGenerateContentConstrained)$"
)

websocket_urlpatterns = [
    re_path(r"^ws/live/$", OriginGuard(AuthMiddlewareStack(LiveConsumer.as_asgi()))),
    # Staff watching a conversation's timeline live (assistant/live_view.py).
    re_path(
        r"^ws/admin/conversations/(?P<conversation_id>[0-9a-f-]{36})/$",
        OriginGuard(AuthMiddlewareStack(WatchConsumer.as_asgi())),
    ),
    # The token is the only credential here (no cookie is read), so any Origin may connect.
    re_path(GEMINI_PATH, GeminiConsumer.as_asgi()),
]
