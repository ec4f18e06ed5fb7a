"""Origin checks for the cookie-authenticated WebSockets: the Origin must be the site's own
origin or one of CSRF_TRUSTED_ORIGINS, compared by scheme, host and port.

The site's own origin is the request's scheme and Host, the Host being one of ALLOWED_HOSTS
(as Django's CSRF check does for forms). Only `http` and `https` origins exist in a browser,
and a browser always sends Origin on a WebSocket handshake: a missing, `null`, `ws://`,
userinfo-carrying or otherwise odd Origin is refused. Default ports are filled in, so
`http://host` and `http://host:80` are the same origin; letters compare case-insensitively;
IPv6 literals compare as addresses. The Gemini-compatible socket does not use this: its token
is its only credential (SPEC section 4)."""

import ipaddress
import re
from dataclasses import dataclass

from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
# scheme "://" host [":" port], nothing else: no userinfo, path, query or fragment.
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_.-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case; an IPv6 literal in brackets, compressed
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _host(raw: str) -> str | None:
    raw = raw.lower()
    if raw.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(raw[1:-1]).compressed}]"
        except ValueError:
            return None
    return raw


def parse_origin(value: str, *, wildcard: bool = False) -> Origin | None:
    """The Origin header's value as an Origin, or None if it is not an http(s) origin.
    With `wildcard`, a host may start with `*.` (CSRF_TRUSTED_ORIGINS' subdomain form)."""
    star = wildcard and "://*." in value
    match = _ORIGIN.fullmatch(value.replace("://*.", "://", 1) if star else value)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    host = _host(match["host"])
    if scheme not in DEFAULT_PORTS or host is None:
        return None
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        return None
    return Origin(scheme, f"*.{host}" if star else host, port)


def _header(scope, name: bytes) -> list[str]:
    return [v.decode("latin1") for k, v in scope.get("headers", []) if k == name]


def _is_secure(scope) -> bool:
    """As Django's `request.is_secure()` decides it for HTTP, for a WebSocket scope."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        meta_name, expected = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        values = _header(scope, name)
        if values:
            return values[0].split(",", 1)[0].strip() == expected
    if scope.get("scheme") in {"wss", "https"}:
        return True
    # With the HTTPS redirect on, no page of this site is ever served over plain http.
    return bool(settings.SECURE_SSL_REDIRECT)


def own_origin(scope) -> Origin | None:
    """The site's origin as this request names it (scheme + Host), if Host is allowed."""
    hosts = _header(scope, b"host")
    if len(hosts) != 1:
        return None
    domain, _ = split_domain_port(hosts[0])
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    scheme = "https" if _is_secure(scope) else "http"
    return parse_origin(f"{scheme}://{hosts[0]}")


def trusted_origins() -> list[Origin]:
    origins = (parse_origin(o, wildcard=True) for o in settings.CSRF_TRUSTED_ORIGINS)
    return [o for o in origins if o is not None]


def _matches(origin: Origin, allowed: Origin) -> bool:
    if (origin.scheme, origin.port) != (allowed.scheme, allowed.port):
        return False
    if allowed.host.startswith("*."):
        suffix = allowed.host[1:]  # ".example.com": subdomains, and the domain itself
        return origin.host.endswith(suffix) or origin.host == suffix[1:]
    return origin.host == allowed.host


def origin_allowed(scope) -> bool:
    values = _header(scope, b"origin")
    if len(values) != 1:  # none (not a browser) or several (ambiguous)
        return False
    origin = parse_origin(values[0])
    if origin is None:
        return False
    own = own_origin(scope)
    candidates = ([own] if own else []) + trusted_origins()
    return any(_matches(origin, allowed) for allowed in candidates)


def refused_origin(scope) -> str:
    """The Origin a refused handshake came with, for the log (cut to 200 characters)."""
    return (_header(scope, b"origin") or ["(none)"])[0][:200]
