"""HTTP response hardening that Django 5.2 has no setting for: CSP, Permissions-Policy, COOP,
and `Cache-Control: no-store` on private pages.

Sync and async capable, so it adds no thread hop under Daphne. Headers already set by a view
are kept (a view may tighten or loosen its own policy).

A private page is any response to a request with a session cookie, or one that sets it (a
login): transcripts, history, tokens and the app must not stay in a shared browser's or a
proxy's cache. This is read from the cookie, not from `request.user`, so no database query
runs here (and none from an async stack). Static files never get here (WhiteNoise answers
them first) and keep their long cache lifetimes.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import DisallowedHost

# The page's camera, microphone and screen capture are for this origin only; nothing else.
PERMISSIONS_POLICY = ", ".join(
    [
        "camera=(self)",
        "microphone=(self)",
        "display-capture=(self)",
        "geolocation=()",
        "payment=()",
        "usb=()",
    ]
)


def content_security_policy(request) -> str:
    """No inline script or style anywhere; sockets only back to the host that served the page."""
    connect = ["'self'"]
    try:
        host = request.get_host()
    except DisallowedHost:
        host = ""
    if host:
        connect += [f"ws://{host}", f"wss://{host}"]
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data: blob:",
        "media-src": "'self' blob:",
        "font-src": "'self'",
        "connect-src": " ".join(connect),
        "worker-src": "'self' blob:",
        "manifest-src": "'self'",
        "object-src": "'none'",
        "frame-ancestors": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _is_debug_error_page(response) -> bool:
    # Django's DEBUG 404/500 pages are built from inline <style> and <script>; a CSP would
    # hide the traceback the developer needs. Never applies with DEBUG off.
    return settings.DEBUG and response.status_code in (404, 500)


class SecurityHeadersMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        response = self.get_response(request)
        self.add_headers(request, response)
        return response

    async def __acall__(self, request):
        response = await self.get_response(request)
        self.add_headers(request, response)
        return response

    @staticmethod
    def add_headers(request, response) -> None:
        if not _is_debug_error_page(response):
            response.headers.setdefault("Content-Security-Policy", content_security_policy(request))
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if _is_private(request, response):
            response.headers.setdefault("Cache-Control", "no-store")


def _is_private(request, response) -> bool:
    name = settings.SESSION_COOKIE_NAME
    return name in request.COOKIES or name in getattr(response, "cookies", {})
