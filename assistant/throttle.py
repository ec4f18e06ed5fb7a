"""Login throttling for every sign-in form: failed sign-ins counted on the shared cache per
address and per (address, account), with a soft per-account limit that slows strangers only.

The scheme (numbers from settings, `PASTRA_LOGIN_*`; docs in the settings file):

1. (address, account): after 5 failures in 15 minutes that address may not try that account
   again until the count decays. Only the guesser's own address is locked.
2. address: after 30 failures in 15 minutes (any accounts) the address may not sign in.
3. account, soft: after 10 failures in 15 minutes from anywhere, an address that has not
   signed in to the account before (a known address: a success in the last 30 days) may try
   it only once per 10 seconds, all such addresses together. Known addresses skip this rule,
   so strangers slow an account down but never lock its owner out.

Counts are sliding windows (this window's count plus the last one's, weighted by how much of
it still overlaps), on Django's cache: Redis when REDIS_URL is set, so every worker shares
them and a restart keeps them. A refused attempt is not checked (its password is never
tried) and not counted. A success clears that (address, account) count and remembers the
address. If the cache is down the attempt is let through, with a warning: signing in must
not depend on Redis being up.

The client's address is REMOTE_ADDR, or, when REMOTE_ADDR is one of PASTRA_TRUSTED_PROXIES,
the right-most X-Forwarded-For entry that is not a trusted proxy; IPv6 counts per /64."""

import functools
import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Q

logger = logging.getLogger(__name__)

_PREFIX = "login-throttle"


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in attempt was refused and when to try again."""

    retry_after: int  # seconds
    reason: str  # "address-account", "address" or "account"

    @property
    def message(self) -> str:
        if self.retry_after < 90:
            wait = f"{self.retry_after} seconds"
        else:
            wait = f"{math.ceil(self.retry_after / 60)} minutes"
        return f"Too many failed sign-in attempts. Please wait {wait} and try again."


# --- the client's address -----------------------------------------------------------------


def _ip(value: str | None):
    try:
        ip = ipaddress.ip_address((value or "").strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def _trusted(ip) -> bool:
    return any(ip in ipaddress.ip_network(n, strict=False) for n in settings.PASTRA_TRUSTED_PROXIES)


def client_address(request) -> str:
    """The client's IP address; X-Forwarded-For is read only through trusted proxies."""
    peer = _ip(request.META.get("REMOTE_ADDR"))
    if peer is None:
        return "unknown"
    if settings.PASTRA_TRUSTED_PROXIES and _trusted(peer):
        for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            ip = _ip(hop)
            if ip is None:  # garbage: stop at the last proxy that vouched for a hop
                break
            peer = ip
            if not _trusted(ip):
                break
    return str(peer)


def _address_key(request) -> str:
    ip = _ip(client_address(request))
    if isinstance(ip, ipaddress.IPv6Address):  # one host usually holds a whole /64
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address)
    return str(ip or "unknown")


def account_key(login: str) -> str:
    """One key per account, whichever identifier (username or email) names it."""
    login = (login or "").strip().lower()
    pks = list(
        get_user_model()
        .objects.filter(Q(username__iexact=login) | Q(email__iexact=login))
        .values_list("pk", flat=True)[:2]
    )
    return f"user:{pks[0]}" if len(pks) == 1 else f"login:{login}"


def _key(*parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"{_PREFIX}:{parts[0]}:{digest}"


# --- sliding-window counters on the cache ----------------------------------------------------


def _buckets(name: str, now: float, window: int) -> tuple[str, str, float]:
    index = int(now // window)
    return f"{name}:{index}", f"{name}:{index - 1}", (now - index * window) / window


def _count(name: str, now: float, window: int) -> tuple[int, int, float]:
    current, previous, elapsed = _buckets(name, now, window)
    values = cache.get_many([current, previous])
    return values.get(current, 0), values.get(previous, 0), elapsed


def _wait(counts: tuple[int, int, float], limit: int, window: int) -> int:
    """Seconds until the weighted count falls below `limit`; 0 if it is below already."""
    current, previous, elapsed = counts
    if current + previous * (1 - elapsed) < limit:
        return 0
    if current < limit:  # the previous window's share has to fade enough
        return max(1, math.ceil(window * (1 - (limit - current) / previous - elapsed)))
    # This window alone is over: wait for it to end, then for its share to fade.
    return max(1, math.ceil(window * (1 - elapsed) + window * (1 - limit / current)))


def _add(name: str, now: float, window: int) -> None:
    current, _, _ = _buckets(name, now, window)
    cache.add(current, 0, timeout=2 * window)
    try:
        cache.incr(current)
    except ValueError:  # evicted between add and incr
        cache.add(current, 1, timeout=2 * window)


def _fail_open(function):
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception:
            logger.warning("login throttle: cache unavailable, not throttled", exc_info=True)
            return None

    return wrapped


# --- the policy --------------------------------------------------------------------------------


def _names(request, login: str) -> tuple[str, str, str, str]:
    address, account = _address_key(request), account_key(login)
    return (
        _key("pair", address, account),
        _key("address", address),
        _key("account", account),
        _key("known", account, address),
    )


@_fail_open
def login_check(request, login: str) -> Refusal | None:
    """Call before checking a password. A Refusal means: do not check it; show the message.
    The refusal is also left on the request (`pastra_login_refusal`) for `refusals_as_429`."""
    now, window = time.time(), settings.PASTRA_LOGIN_WINDOW_SECONDS
    pair, address, account, known = _names(request, login)
    refusal = None
    for name, limit, reason in (
        (pair, settings.PASTRA_LOGIN_FAILURES_PER_ADDRESS_ACCOUNT, "address-account"),
        (address, settings.PASTRA_LOGIN_FAILURES_PER_ADDRESS, "address"),
    ):
        if wait := _wait(_count(name, now, window), limit, window):
            refusal = Refusal(wait, reason)
            break
    if refusal is None:
        soft = settings.PASTRA_LOGIN_FAILURES_PER_ACCOUNT
        attacked = _wait(_count(account, now, window), soft, window) > 0
        if attacked and not cache.get(known):
            spacing = settings.PASTRA_LOGIN_SLOW_SECONDS
            if not cache.add(_key("gate", account), 1, timeout=spacing):
                refusal = Refusal(spacing, "account")
    if refusal is not None:
        request.pastra_login_refusal = refusal
        logger.info("login throttled: %s for %ss", refusal.reason, refusal.retry_after)
    return refusal


@_fail_open
def login_failed(request, login: str) -> None:
    """Count one failed sign-in (wrong password or no such account)."""
    now, window = time.time(), settings.PASTRA_LOGIN_WINDOW_SECONDS
    pair, address, account, _ = _names(request, login)
    for name in (pair, address, account):
        _add(name, now, window)


@_fail_open
def login_succeeded(request, user) -> None:
    """The password was right: remember the address, forget its failures on this account."""
    now, window = time.time(), settings.PASTRA_LOGIN_WINDOW_SECONDS
    address, account = _address_key(request), f"user:{user.pk}"
    cache.set(_key("known", account, address), 1, timeout=settings.PASTRA_LOGIN_KNOWN_SECONDS)
    current, previous, _ = _buckets(_key("pair", address, account), now, window)
    cache.delete_many([current, previous])


def refusals_as_429(view):
    """Wrap a login view: a throttled attempt's page (the form with its message) is a 429
    with Retry-After."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        refusal = getattr(request, "pastra_login_refusal", None)
        if refusal is not None:
            response.status_code = 429
            response["Retry-After"] = str(refusal.retry_after)
        return response

    return wrapped
