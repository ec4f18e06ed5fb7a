"""Plain HTTP on the WebSocket port: request bodies, JSON responses, `POST /v1alpha/auth_tokens`.

`websockets` parses every request on the port but refuses one with a body, so
`BodyConnection` takes a `Content-Length` body off the wire first and hands the rest of the
request on without it; `process_request` then answers from `connection.http_body`.
"""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from . import protocol as p
from .tokens import TOKEN_PREFIX, HttpError, TokenStore

AUTH_TOKENS_PATH = re.compile(r"^/+v1alpha/auth_tokens$")
MAX_BODY = 1 << 20
_HEAD_LIMIT = 64 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
}


class BodyConnection(ServerConnection):
    """A ServerConnection that reads a request body (`Content-Length`) before the handshake."""

    http_body: bytes = b""

    def connection_made(self, transport) -> None:
        self._sniff: bytearray | None = bytearray()
        self._head = b""
        self._length = -1
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._sniff is None:
            super().data_received(data)
            return
        self._sniff += data
        if self._length < 0:
            end = self._sniff.find(b"\r\n\r\n")
            if end < 0:
                if len(self._sniff) > _HEAD_LIMIT:
                    self._pass(bytes(self._sniff))
                return
            head, rest = bytes(self._sniff[: end + 4]), self._sniff[end + 4 :]
            length, stripped = _content_length(head)
            if not length or length > MAX_BODY:  # no body (the upgrade) or too big: as is
                self._pass(bytes(self._sniff))
                return
            self._head, self._length, self._sniff = stripped, length, bytearray(rest)
        if len(self._sniff) >= self._length:
            self.http_body = bytes(self._sniff[: self._length])
            self._pass(self._head)

    def _pass(self, data: bytes) -> None:
        self._sniff = None
        super().data_received(data)


def _content_length(head: bytes) -> tuple[int, bytes]:
    """(Content-Length or 0, the head without that header)."""
    lines = head.split(b"\r\n")
    length, kept = 0, []
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return 0, head
            continue
        kept.append(line)
    return length, b"\r\n".join(kept)


def json_response(status: int, body: Any) -> Response:
    data = p.dumps(body)
    headers = Headers(
        [
            ("Content-Type", "application/json; charset=UTF-8"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(status, _REASONS.get(status, ""), headers, data)


def not_found() -> Response:
    return json_response(404, {"error": {"code": 404, "status": "NOT_FOUND"}})


def auth_tokens(
    connection: ServerConnection, request: Request, tokens: TokenStore, api_key: str
) -> Response:
    """`POST /v1alpha/auth_tokens`: mint an ephemeral token, authenticated by the API key."""
    if request.method != "POST":
        error = HttpError(405, "Method not allowed.", "INVALID_ARGUMENT")
        return json_response(405, error.body())
    query = parse_qs(request.path.partition("?")[2])
    key = request.headers.get("x-goog-api-key", "") or (query.get("key") or [""])[0]
    try:
        if not key:
            raise HttpError(403, p.REASON_NO_KEY, "PERMISSION_DENIED")
        if key.startswith(TOKEN_PREFIX) or (
            api_key and not hmac.compare_digest(key.encode(), api_key.encode())
        ):
            raise HttpError(400, p.REASON_BAD_KEY)
        raw = getattr(connection, "http_body", b"")
        try:
            body = p.loads(raw) if raw.strip() else {}
        except p.JSONDecodeError:
            raise HttpError(400, p.REASON_BAD_JSON) from None
        return json_response(200, tokens.mint(body))
    except HttpError as error:
        return json_response(error.code, error.body())
