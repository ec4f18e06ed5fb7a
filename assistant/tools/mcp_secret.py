"""An MCP server's bearer secret at rest: sealed with Fernet under a key derived from
SECRET_KEY, or read from a file (`secret_file`, like the deployment's own `_FILE` variables).

The database holds only the sealed token: a database dump or a staff member reading the
admin never sees the secret (the admin form is write-only). Rotating SECRET_KEY makes a sealed
secret unreadable: the server then fails with a message asking staff to enter it again.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

_CONTEXT = b"pastra mcp server secret v1\0"


def _fernet() -> Fernet:
    digest = hashlib.sha256(_CONTEXT + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def unseal(token: str) -> str:
    """The secret, or ValueError with a sentence for staff."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "its stored secret cannot be read (SECRET_KEY changed?): enter it again"
        ) from None


def read_file(path: str) -> str:
    """The first line of a secret file, or ValueError naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"its secret file {path} cannot be read ({exc.strerror})") from None
