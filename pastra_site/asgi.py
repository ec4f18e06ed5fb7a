"""ASGI entry point: HTTP to Django, WebSockets to assistant.routing (which sets per-path auth)."""

import os

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pastra_site.settings")
django_asgi_app = get_asgi_application()  # populate the app registry before importing consumers

from assistant.live import compat
from assistant.live.db import arrival_order
from assistant.routing import websocket_urlpatterns

# daphne's close-code, drain and backpressure fixes (assistant/live/compat.py), explicitly.
compat.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Each socket's database calls are served in the order the sockets connected.
        "websocket": arrival_order(URLRouter(websocket_urlpatterns)),
    }
)
