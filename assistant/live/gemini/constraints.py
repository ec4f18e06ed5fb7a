"""An ephemeral token's locked setup, as Google's `bidiGenerateContentSetup` + `fieldMask`
read it: the mask checked when a token is minted, and the lock applied to a client's setup
on the Constrained socket. Pure functions; the rules are in docs/ephemeral-tokens.md.

* No setup and no mask: nothing is locked; the client's setup is used.
* A setup and no mask (the SDK's default, `lock_additional_fields` unset): the whole setup
  is locked. The token's setup replaces the client's, whose fields are ignored (Google:
  "changing output_audio_transcription ... will be ignored"), but for its
  `sessionResumption`: resuming is the client's business.
* A mask (`lock_additional_fields=[...]`): the masked fields take the token's values (absent
  where its setup does not set them); the rest are the client's. A client setup that sets a
  masked field to another value is refused (1007, the fields named), never silently changed.
* The model, where the token names one, is locked in every mode: a client asking for
  another is refused (1008).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini import errors
from assistant.live.gemini.wire import camel, normalize

_MISSING = object()


def parse_mask(value: Any) -> tuple[str, ...]:
    """A fieldMask (proto3 JSON: one comma-separated string; a list is accepted too) as
    camelCase dotted paths, without repeats. A numeric segment (the JS SDK's `tools.0`)
    stands for its list as a whole. Raises ValueError with Google's reason."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(errors.REASON_MASK_INVALID)
    paths: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(errors.REASON_MASK_INVALID)
        segments = []
        for segment in item.strip().split("."):
            if segment.isdigit():
                break
            if not segment.replace("_", "").isalnum():
                raise ValueError(errors.REASON_MASK_INVALID)
            segments.append(camel(segment))
        if not segments:
            raise ValueError(errors.REASON_MASK_INVALID)
        path = ".".join(segments)
        if path not in paths:
            paths.append(path)
    return tuple(paths)


def set_fields(setup: dict[str, Any]) -> list[str]:
    """The fields a setup sets, two levels deep (as the SDK builds its mask)."""
    fields = []
    for key, value in setup.items():
        if isinstance(value, dict) and value:
            fields.extend(f"{key}.{inner}" for inner in value)
        else:
            fields.append(key)
    return fields


def _related(a: str, b: str) -> bool:
    """One path is the other, or an ancestor of it."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def uncovered(setup: dict[str, Any], mask: tuple[str, ...]) -> list[str]:
    """With a mask, every field the token's setup sets must be in it (Google refuses the
    mint otherwise): the fields that are not."""
    return [f for f in set_fields(setup) if not any(_related(f, m) for m in mask)]


def _get(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for segment in path.split("."):
        if not isinstance(value, dict) or segment not in value:
            return _MISSING
        value = value[segment]
    return value


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for segment in parents:
        inner = body.get(segment)
        if not isinstance(inner, dict):
            if value is _MISSING:
                return
            inner = body[segment] = {}
        body = inner
    if value is _MISSING:
        body.pop(last, None)
    else:
        body[last] = copy.deepcopy(value)


def apply_lock(
    client: dict[str, Any],
    *,
    model: str,
    setup: dict[str, Any] | None,
    mask: tuple[str, ...],
    resolve: Callable[[str], str | None],
) -> dict[str, Any]:
    """The (normalised) setup a session opened with this token runs with. `model` is the
    token's locked model, resolved ("" = none); `resolve` resolves what the client asked
    for the same way. Raises SessionEnd: another model (MODEL_NOT_ALLOWED), a masked
    field set to another value (BAD_MESSAGE)."""
    client = normalize(client)
    asked = client.get("model")
    if model and isinstance(asked, str) and asked.strip() and resolve(asked.strip()) != model:
        raise SessionEnd(EndKind.MODEL_NOT_ALLOWED, errors.reason_model_locked(model, asked))
    if setup is None and not mask:
        return client
    token_setup = normalize(setup or {})
    if not mask:
        locked = copy.deepcopy(token_setup)
        if "sessionResumption" in client and "sessionResumption" not in locked:
            locked["sessionResumption"] = client["sessionResumption"]
        if "model" not in locked and asked is not None:
            locked["model"] = asked
        return locked
    out = copy.deepcopy(client)
    conflicts = []
    for path in mask:
        theirs, mine = _get(token_setup, path), _get(client, path)
        if path != "model" and mine is not _MISSING and mine != theirs:
            conflicts.append(path)
        _put(out, path, theirs)
    if conflicts:
        raise SessionEnd(EndKind.BAD_MESSAGE, errors.reason_fields_locked(conflicts))
    return out
