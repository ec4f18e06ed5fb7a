"""Ephemeral tokens: minting (`POST /v1alpha/auth_tokens`) and judging one on the
`BidiGenerateContentConstrained` endpoint (expiry, new-session window, uses, locked setup).

Google's ephemeral-tokens page (ai.google.dev, 2025-2026) and google-genai 3.6.1 tokens.py
/ types.py CreateAuthTokenConfig: `uses` (default 1, 0 = unlimited, resuming a session is not
a use), `expireTime` (default now+30 min, under 20 h; "messages … will be rejected"),
`newSessionExpireTime` (default now+60 s, under 20 h), `bidiGenerateContentSetup` (the SDK's
`liveConnectConstraints`) and `fieldMask` (the SDK's `lockAdditionalFields`). Tokens live in
memory, per emulator process.
"""

from __future__ import annotations

import base64
import copy
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from . import protocol as p
from .models import model_lookup
from .schema import LEAF, SETUP, STRUCT, Msg

TOKEN_PREFIX = "auth_tokens/"  # noqa: S105 - a name prefix, not a secret
DEFAULT_EXPIRE = 30 * 60.0
DEFAULT_NEW_SESSION = 60.0
MAX_AHEAD = 20 * 3600.0
_TIMESTAMP_PROTO = "type.googleapis.com/google.protobuf.Timestamp"
_FIELDS = {"uses", "expireTime", "newSessionExpireTime", "bidiGenerateContentSetup", "fieldMask"}
_FRACTION = re.compile(r"(\.\d{6})\d+")

# Close reasons on the Constrained endpoint (emulator wording where Google's is unknown).
REASON_TOKEN_EXPIRED = "Auth token expired. Please create a new auth token."  # noqa: S105
REASON_NO_NEW_SESSIONS = (
    "Auth token can no longer start new sessions: its newSessionExpireTime has passed."
)
REASON_NO_USES = "Auth token has no uses left."
# Google's text [OBS gemini-live-api-examples#49], at mint time.
REASON_OUTSIDE_MASK = (
    "BidiGenerateContentSetup contains fields that are not specified in field_mask"
)
REASON_BAD_MASK = "field_mask is invalid for BidiGenerateContentSetup"  # [OBS js-genai#1492]


class HttpError(Exception):
    """A REST error, sent as Google's `{"error": {"code", "message", "status"}}`."""

    def __init__(self, code: int, message: str, status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


@dataclass(eq=False)
class AuthToken:
    name: str
    uses: int  # 0: unlimited
    expire_at: float
    new_session_until: float
    setup: dict[str, Any] | None  # normalised (camelCase), None: the client's setup is free
    mask: tuple[tuple[str, ...], ...]  # camelCase paths; empty: the whole setup is locked
    used: int = 0

    def consume(self) -> None:
        self.used += 1


class TokenStore:
    """The tokens one emulator minted; `clock` is wall time (tokens carry RFC 3339 times)."""

    def __init__(self, rng: random.Random, clock=time.time) -> None:
        self._rng = rng
        self._clock = clock
        self._tokens: dict[str, AuthToken] = {}

    def get(self, name: str) -> AuthToken | None:
        return self._tokens.get(name)

    def mint(self, body: Any) -> dict[str, Any]:
        """Validate a create request like Google's REST service; the AuthToken resource."""
        if not isinstance(body, dict):
            raise HttpError(400, p.REASON_BAD_JSON)
        for key in body:
            if p.to_camel(key) not in _FIELDS:
                raise HttpError(400, p.reason_unknown_field(key, ""))
        fields = {p.to_camel(key): value for key, value in body.items() if value is not None}
        now = self._clock()
        uses = _uses(fields.get("uses", 1))
        expire_at = _time(fields.get("expireTime"), now, DEFAULT_EXPIRE, "expire_time")
        new_session = _time(
            fields.get("newSessionExpireTime"), now, DEFAULT_NEW_SESSION, "new_session_expire_time"
        )
        setup = _setup(fields.get("bidiGenerateContentSetup"))
        mask = _mask(fields.get("fieldMask", ""))
        if setup is not None and mask:
            for path in _set_paths(setup, SETUP):
                if not any(path[: len(locked)] == locked for locked in mask):
                    raise HttpError(400, REASON_OUTSIDE_MASK)
        name = TOKEN_PREFIX + base64.urlsafe_b64encode(self._rng.randbytes(24)).decode()
        self._tokens[name] = AuthToken(name, uses, expire_at, new_session, setup, mask)
        resource: dict[str, Any] = {
            "name": name,
            "uses": uses,
            "expireTime": _rfc3339(expire_at),
            "newSessionExpireTime": _rfc3339(new_session),
        }
        if setup is not None:
            resource["bidiGenerateContentSetup"] = setup
        if mask:
            resource["fieldMask"] = ",".join(".".join(path) for path in mask)
        return resource

    def judge(self, name: str | None, *, resuming: bool) -> AuthToken:
        """The token for a new connection, or ProtocolError(1008) with the reason."""
        token = self._tokens.get(name or "")
        if token is None:  # as Google answered a rejected access_token [OBS protocol doc 1.2]
            raise p.ProtocolError(p.POLICY, p.REASON_NO_KEY)
        now = self._clock()
        if now >= token.expire_at:
            raise p.ProtocolError(p.POLICY, REASON_TOKEN_EXPIRED)
        if resuming:  # "Resuming a Live API session does not count as a use."
            return token
        if now >= token.new_session_until:
            raise p.ProtocolError(p.POLICY, REASON_NO_NEW_SESSIONS)
        if token.uses and token.used >= token.uses:
            raise p.ProtocolError(p.POLICY, REASON_NO_USES)
        return token

    def seconds_left(self, token: AuthToken) -> float:
        return max(0.0, token.expire_at - self._clock())


def credential(request: Any) -> str | None:
    """The token a Constrained connection presents: `Authorization: Token …` (Python SDK),
    `?access_token=` (JS SDK, browsers), or a key field holding an `auth_tokens/…` name."""
    query = parse_qs(request.path.partition("?")[2]) if request else {}
    headers = request.headers if request else {}
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "token" and value.strip():
        return value.strip()
    for candidate in (
        (query.get("access_token") or [""])[0],
        headers.get("x-goog-api-key", ""),
        (query.get("key") or [""])[0],
    ):
        if candidate.startswith(TOKEN_PREFIX):
            return candidate
    return None


def apply(token: AuthToken, body: dict[str, Any]) -> dict[str, Any]:
    """The setup a session gets: the client's `body` under the token's locks."""
    if token.setup is None:
        return body
    locked_model = token.setup.get("model")
    if isinstance(locked_model, str) and _model(body.get("model")) != _model(locked_model):
        shown = f"models/{_model(body.get('model'))}"
        raise p.ProtocolError(
            p.POLICY,
            f"{shown} is not allowed by this auth token: it is locked to models/"
            f"{_model(locked_model)}.",
        )
    if not token.mask:  # no field mask: the token's setup replaces the client's
        effective = copy.deepcopy(token.setup)
        effective.setdefault("model", body.get("model"))
        return effective
    effective = copy.deepcopy(body)
    for path in token.mask:
        if path == ("model",):
            continue
        mine, theirs = _get(body, path), _get(token.setup, path)
        if mine is not _MISSING and mine != theirs:
            where = ".".join(p.to_snake(part) for part in path)
            raise p.ProtocolError(
                p.INVALID_ARGUMENT,
                f"BidiGenerateContentSetup contains fields that are locked by field_mask: {where}",
            )
        if theirs is not _MISSING:
            _put(effective, path, copy.deepcopy(theirs))
    return effective


# --- helpers --------------------------------------------------------------------------------

_MISSING = object()


def _model(name: Any) -> str:
    return str(name or "").removeprefix("models/")


def _uses(value: Any) -> int:
    try:
        uses = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        uses = None
    if uses is None or (isinstance(value, float) and value != int(value)):
        raise HttpError(400, p.reason_invalid_value("uses", "TYPE_INT32", value))
    if uses < 0:
        raise HttpError(400, "uses must not be negative.")
    return uses


def _time(value: Any, now: float, default: float, field: str) -> float:
    if value is None:
        return now + default
    if not isinstance(value, str):
        raise HttpError(400, p.reason_invalid_value(field, _TIMESTAMP_PROTO, value))
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HttpError(400, p.reason_invalid_value(field, _TIMESTAMP_PROTO, value)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    at = moment.timestamp()
    if at <= now:
        raise HttpError(400, f"{field} must be in the future.")
    if at >= now + MAX_AHEAD:
        raise HttpError(400, f"{field} must be less than 20 hours in the future.")
    return at


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _setup(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        setup = p.normalize_message({"setup": value})[1]
    except p.ProtocolError as error:
        raise HttpError(
            400, error.reason.replace("'setup.", "'bidi_generate_content_setup.")
        ) from None
    model = setup.get("model")
    if model is not None and (not isinstance(model, str) or model_lookup(model) is None):
        raise HttpError(404, p.reason_model_not_found(str(model), "v1alpha"), "NOT_FOUND")
    return setup


def _mask(value: Any) -> tuple[tuple[str, ...], ...]:
    if isinstance(value, list):  # tolerated: the REST form is a comma-separated string
        value = ",".join(str(item) for item in value)
    if not isinstance(value, str):
        raise HttpError(400, REASON_BAD_MASK)
    paths = []
    for raw in value.split(","):
        if not raw.strip():
            continue
        path = tuple(p.to_camel(part) for part in raw.strip().split("."))
        if not _valid_path(path):
            raise HttpError(400, REASON_BAD_MASK)
        paths.append(path)
    return tuple(paths)


def _valid_path(path: tuple[str, ...]) -> bool:
    schema: Any = SETUP
    for part in path:
        if schema is STRUCT:  # inside a free-form message: cannot be checked further
            return True
        if not isinstance(schema, Msg) or part not in schema.fields:
            return False
        schema = schema.fields[part]
    return True


def _set_paths(value: dict[str, Any], schema: Msg, prefix: tuple[str, ...] = ()) -> list:
    """The paths of the fields a (normalised) setup sets, down to its leaves."""
    paths = []
    for key, item in value.items():
        child = schema.fields.get(key, LEAF)
        if isinstance(child, Msg) and isinstance(item, dict) and item:
            paths.extend(_set_paths(item, child, (*prefix, key)))
        else:
            paths.append((*prefix, key))
    return paths


def _get(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(value, dict) or value.get(part) is None:
            return _MISSING
        value = value[part]
    return value


def _put(value: dict[str, Any], path: tuple[str, ...], item: Any) -> None:
    for part in path[:-1]:
        child = value.get(part)
        if not isinstance(child, dict):
            child = value[part] = {}
        value = child
    value[path[-1]] = item
