"""`POST /v1alpha/auth_tokens`: ephemeral tokens, as the SDKs' `auth_tokens.create` asks for
them, minted with a personal access token and answered in Google's shapes (the reply
`{"name": "auth_tokens/…"}`, a refusal `{"error": {"code", "message", "status"}}`).
The rules are in docs/ephemeral-tokens.md; the token is used on the Constrained socket
(assistant/live/credentials.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from assistant import services
from assistant.live.contract import allowed_model
from assistant.live.errors import SessionEnd
from assistant.live.gemini import errors
from assistant.live.gemini.constraints import parse_mask, uncovered
from assistant.live.gemini.setup import read_client_setup
from assistant.live.gemini.wire import normalize
from assistant.models import AccessToken

VERSION = "v1alpha"  # Google serves auth_tokens on v1alpha only
DEFAULT_EXPIRE = timedelta(minutes=30)
DEFAULT_NEW_SESSION = timedelta(seconds=60)
MAX_AHEAD = timedelta(hours=20)  # both times must be less than this far ahead
FIELDS = frozenset(
    {"uses", "expireTime", "newSessionExpireTime", "bidiGenerateContentSetup", "fieldMask"}
)
_FRACTION = re.compile(r"(\.\d{6})\d+")  # RFC 3339 allows nanoseconds; Python keeps micros


class Refusal(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _invalid(message: str) -> Refusal:
    return Refusal(400, "INVALID_ARGUMENT", message)


def error_response(refusal: Refusal) -> JsonResponse:
    body = {"error": {"code": refusal.code, "message": refusal.message, "status": refusal.status}}
    return JsonResponse(body, status=refusal.code)


@dataclass(frozen=True)
class Minting:
    """A valid request: what the token will allow."""

    uses: int
    expire_time: datetime
    new_session_expire_time: datetime
    model: str
    setup: dict[str, Any] | None
    field_mask: tuple[str, ...]


def _time(body: dict, name: str, *, now: datetime, default: timedelta) -> datetime:
    value = body.get(name)
    if value is None:
        return now + default
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", value))
    except (TypeError, ValueError):
        raise _invalid(f"Invalid value at '{name}': not an RFC 3339 timestamp.") from None
    if when.tzinfo is None:
        raise _invalid(f"Invalid value at '{name}': the timestamp needs Z or an offset.")
    if when <= now:
        raise _invalid(f"{name} must be in the future.")
    if when >= now + MAX_AHEAD:
        raise _invalid(f"{name} must be less than 20 hours in the future.")
    return when


def _uses(body: dict) -> int:
    value = body.get("uses", 1)
    if isinstance(value, str) and value.strip().isdigit():  # proto3 JSON: int32 as a string
        value = int(value)
    if type(value) is not int or not 0 <= value < 2**31:
        raise _invalid("Invalid value at 'uses': a non-negative integer (0 = no limit).")
    return value


def parse(raw: Any, *, now: datetime) -> Minting:
    """Validate a minting request body. Raises Refusal (400)."""
    if not isinstance(raw, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    try:
        body = normalize(raw)
    except SessionEnd as end:
        raise _invalid(end.message) from None
    for name in body:
        if name not in FIELDS:
            raise _invalid(errors.reason_unknown_field(name))
    try:
        mask = parse_mask(body.get("fieldMask"))
    except ValueError as error:
        raise _invalid(str(error)) from None
    setup = body.get("bidiGenerateContentSetup")
    if setup is not None and not isinstance(setup, dict):
        raise _invalid("Invalid value at 'bidiGenerateContentSetup': an object.")
    setup = setup or None  # an empty setup locks nothing
    model = ""
    if setup is not None and "model" in setup:
        try:
            requested = read_client_setup(setup).model.removeprefix("models/")
        except SessionEnd as end:
            raise _invalid(end.message) from None
        model = allowed_model(requested) or ""
        if not model:
            raise _invalid(errors.reason_model_not_allowed(requested, VERSION))
        setup = {**setup, "model": f"models/{model}"}
    if "model" in mask and not model:
        raise _invalid(errors.REASON_MASK_NO_MODEL)
    if mask and setup is not None and (fields := uncovered(setup, mask)):
        raise _invalid(f"{errors.REASON_MASK_UNCOVERED}: {', '.join(fields)}")
    return Minting(
        uses=_uses(body),
        expire_time=_time(body, "expireTime", now=now, default=DEFAULT_EXPIRE),
        new_session_expire_time=_time(
            body, "newSessionExpireTime", now=now, default=DEFAULT_NEW_SESSION
        ),
        model=model,
        setup=setup,
        field_mask=mask,
    )


def _minter(request) -> AccessToken:
    raw = (request.headers.get("x-goog-api-key") or request.GET.get("key") or "").strip()
    if not raw:
        raise Refusal(403, "PERMISSION_DENIED", errors.REASON_NO_KEY)
    if raw.startswith("auth_tokens/"):
        raise Refusal(
            403,
            "PERMISSION_DENIED",
            "An ephemeral token cannot mint tokens: use a personal access token.",
        )
    token = services.access_token_find(raw=raw)
    if token is None:
        raise _invalid(errors.REASON_BAD_KEY)
    return token


@csrf_exempt  # no cookie is read here: the access token is the only credential
@never_cache
def create(request):
    try:
        if request.method != "POST":
            raise Refusal(405, "UNIMPLEMENTED", "auth_tokens takes POST only.")
        minter = _minter(request)
        try:
            raw = json.loads(request.body or b"{}")
        except ValueError:
            raise _invalid("Invalid JSON payload received.") from None
        minting = parse(raw, now=timezone.now())
    except Refusal as refusal:
        return error_response(refusal)
    _, name = services.ephemeral_token_create(
        access_token=minter,
        uses=minting.uses,
        expire_time=minting.expire_time,
        new_session_expire_time=minting.new_session_expire_time,
        model=minting.model,
        setup=minting.setup,
        field_mask=minting.field_mask,
    )
    return JsonResponse({"name": name})


@csrf_exempt
def other_version(request, version: str):
    """Google serves auth_tokens on v1alpha only; say so instead of a bare 404."""
    message = (
        f"auth_tokens is not served on {version}: create the client with "
        "http_options={'api_version': 'v1alpha'}."
    )
    return error_response(Refusal(404, "NOT_FOUND", message))
