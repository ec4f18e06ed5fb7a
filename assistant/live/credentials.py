"""Who a Gemini-path socket stands for: the credential it presents and what it grants.

BidiGenerateContent takes a personal access token (`key` query parameter or
`x-goog-api-key` header). BidiGenerateContentConstrained takes an ephemeral token
(`auth_tokens/…`, minted at `POST /v1alpha/auth_tokens`) in `Authorization: Token …`,
`access_token`, or either of those two (the Python SDK sends the header pair). As at Google,
the upgrade always succeeds and a refused credential closes at the first message.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from assistant import services
from assistant.errors import EphemeralTokenRefused
from assistant.live.close_codes import GeminiCode, close_reason
from assistant.live.db import live_db
from assistant.live.gemini import errors

CONSTRAINED = "BidiGenerateContentConstrained"
EPHEMERAL = "auth_tokens/"

_identify = live_db(services.access_token_identify)
_ephemeral = live_db(services.ephemeral_token_authenticate)


@dataclass(frozen=True)
class Caller:
    user_id: int | None  # None: refused
    refusal: tuple[int, str] | None = None  # close code and reason, at the first message
    ephemeral: services.EphemeralGrant | None = None
    token_id: int | None = None  # the access token presented (not for an ephemeral one)

    @property
    def access_token_id(self) -> int | None:
        """The access token behind the session: presented, or the ephemeral token's minter.
        Revoking it ends the session (its `token.<id>` group, assistant/control.py)."""
        return self.ephemeral.access_token_id if self.ephemeral is not None else self.token_id


def presented(scope: dict, *, constrained: bool) -> str:
    """The raw credential, or ""."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])}
    if constrained:
        scheme, _, credential = headers.get(b"authorization", "").strip().partition(" ")
        if scheme.lower() == "token" and credential.strip():
            return credential.strip()
        if token := (query.get("access_token") or [""])[0].strip():
            return token
    if key := (query.get("key") or [""])[0].strip():
        return key
    return headers.get(b"x-goog-api-key", "").strip()


def _refused(code: int, reason: str) -> Caller:
    return Caller(None, (int(code), close_reason(reason)))


async def identify(scope: dict) -> Caller:
    """Authenticate a Gemini-path socket's scope: one database query (and a token's first
    use in a minute recorded: services.access_token_identify). The session's start checks the
    credential again, in its own transaction (services.lease_acquire)."""
    constrained = scope.get("url_route", {}).get("kwargs", {}).get("method") == CONSTRAINED
    raw = presented(scope, constrained=constrained)
    if not raw:
        return _refused(GeminiCode.POLICY, errors.REASON_NO_KEY)
    if not constrained:
        ids = await _identify(raw=raw)
        if ids is None:
            return _refused(GeminiCode.INVALID_ARGUMENT, errors.REASON_BAD_KEY)
        return Caller(ids[1], token_id=ids[0])
    if not raw.startswith(EPHEMERAL):
        return _refused(GeminiCode.INVALID_ARGUMENT, errors.REASON_NOT_EPHEMERAL)
    try:
        grant = await _ephemeral(raw=raw)
    except EphemeralTokenRefused as refusal:
        return _refused(*errors.gemini_close(errors.token_refusal(refusal.reason)))
    return Caller(grant.user_id, ephemeral=grant)


def expired(grant: services.EphemeralGrant) -> bool:
    return time.time() >= grant.expire_time.timestamp()


async def expiry(grant: services.EphemeralGrant) -> None:
    """A session task: ends the session when its ephemeral token's expireTime comes."""
    await asyncio.sleep(max(0.0, grant.expire_time.timestamp() - time.time()))
    raise errors.token_refusal(EphemeralTokenRefused.EXPIRED)
