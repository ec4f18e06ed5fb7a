"""What an MCP tool becomes for the Live API: its namespaced name and its schema, or a refusal.

Names (SPEC section 5): `<server>__<tool>`, each part reduced to `[A-Za-z0-9_]`, at most 64
characters in all. Google's FunctionDeclaration reference: the name "must be a-z, A-Z, 0-9, or
contain underscores, colons, dots, and dashes, with a maximum length of 64"
(ai.google.dev/api/caching#FunctionDeclaration, 2026). The server part has no `__` of its own
(runs of underscores are collapsed) and starts with a letter, so the first `__` always ends it:
two servers never collide, and no built-in tool has a `__`. A name over 64 characters keeps its
first 57 and ends in `_` and 6 hex digits of a hash of the whole name.

Schemas: an MCP tool declares JSON Schema (`inputSchema`); Pastra declares `parameters` in the
OpenAPI subset Gemini reads (ai.google.dev/api/caching#Schema, 2026: type in upper case, format,
title, description, nullable, enum, items, properties, required, min/max items, length,
properties, minimum, maximum, pattern, example, anyOf, default, propertyOrdering). `to_gemini`
translates what maps one to one (lower-case types, `["X", "null"]` and `anyOf` with `null` as
`nullable`, a string `const` as a one-value `enum`) and drops pure annotations
(`$schema`, `additionalProperties`, `examples`, `readOnly`, ...). What cannot be said in that
subset is refused with `SchemaRefused` naming it, and the tool is left out (never sent
upstream, where Gemini would refuse the whole setup): `$ref`/`$defs`, `oneOf`, `allOf`, `not`,
conditionals, tuple items, several types, a non-string enum, an object without properties, a
`required` name that is not a property, nesting deeper than MAX_DEPTH, a schema larger than
MAX_SCHEMA_BYTES. A tool without arguments is declared without `parameters`: Gemini refuses an
OBJECT with empty `properties`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MAX_NAME = 64
MAX_SERVER_NAME = 24
MAX_DEPTH = 6
MAX_SCHEMA_BYTES = 16_000
MAX_DESCRIPTION = 1000
SEPARATOR = "__"

_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
_COPIED = (
    "title",
    "description",
    "format",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "pattern",
    "default",
    "example",
)
_DROPPED = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "additionalProperties",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
        "contentMediaType",
        "contentEncoding",
        "propertyNames",
    }
)
_REFUSED = {
    "$ref": "a reference ($ref)",
    "$defs": "shared definitions ($defs)",
    "definitions": "shared definitions",
    "oneOf": "oneOf",
    "allOf": "allOf",
    "not": "not",
    "if": "a conditional (if/then/else)",
    "patternProperties": "patternProperties",
    "dependentRequired": "dependentRequired",
    "dependentSchemas": "dependentSchemas",
    "prefixItems": "tuple items (prefixItems)",
    "unevaluatedProperties": "unevaluatedProperties",
}


class SchemaRefused(ValueError):
    """The Live API would refuse this tool; the message says why, for staff."""


def reduce(part: str) -> str:
    """One name part reduced to [A-Za-z0-9_]."""
    return re.sub(r"[^A-Za-z0-9_]", "_", part)


def server_part(name: str) -> str:
    """A server's name as the first part: reduced, no `__` run, starting with a letter."""
    reduced = re.sub(r"_+", "_", reduce(name)).strip("_")
    if not reduced or not reduced[0].isalpha():
        raise ValueError("a server name must start with a letter")
    return reduced[:MAX_SERVER_NAME]


def namespaced(server: str, tool: str) -> str:
    """The name the model sees for `tool` of `server`."""
    name = f"{server_part(server)}{SEPARATOR}{reduce(tool)}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: MAX_NAME - 7]}_{digest}"


def to_gemini(schema: Any) -> dict | None:
    """The `parameters` for a tool's JSON Schema (None: it takes no arguments), or raise
    SchemaRefused."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise SchemaRefused("its input schema is not an object")
    if len(json.dumps(schema, default=str)) > MAX_SCHEMA_BYTES:
        raise SchemaRefused(f"its input schema is larger than {MAX_SCHEMA_BYTES} bytes")
    if schema.get("type", "object") != "object":
        raise SchemaRefused("its input schema is not of type object")
    if not schema.get("properties"):
        _refuse_unknown(schema, "the input schema")
        return None
    return _convert(schema, "the input schema", 1)


def _refuse_unknown(schema: dict, where: str) -> None:
    for key in schema:
        if key in _REFUSED:
            raise SchemaRefused(f"{where} uses {_REFUSED[key]}, which the Live API does not accept")


def _convert(schema: Any, where: str, depth: int) -> dict:
    if not isinstance(schema, dict):
        raise SchemaRefused(f"{where} is not a schema object")
    if depth > MAX_DEPTH:
        raise SchemaRefused(f"{where} is nested more than {MAX_DEPTH} levels deep")
    _refuse_unknown(schema, where)
    out: dict[str, Any] = {}
    kind, nullable = _type(schema, where)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s != {"type": "null"}]
        if len(options) < len(schema["anyOf"]):
            nullable = True
        if len(options) == 1 and kind is None:
            inner = _convert(options[0], where, depth)
            out.update(inner)
        elif options:
            out["anyOf"] = [_convert(o, f"{where} (anyOf)", depth + 1) for o in options]
    if kind is not None:
        out["type"] = kind.upper()
    if nullable:
        out["nullable"] = True
    for key in _COPIED:
        if key in schema:
            out[key] = schema[key]
    if "description" in out and isinstance(out["description"], str):
        out["description"] = out["description"][:MAX_DESCRIPTION]
    if "const" in schema:
        schema = {**schema, "enum": [schema["const"]]}
    if "enum" in schema:
        values = schema["enum"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SchemaRefused(f"{where} has an enum of values that are not strings")
        out["enum"] = values
        out.setdefault("type", "STRING")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict) or not properties:
            raise SchemaRefused(f"{where} is an object without properties")
        out["properties"] = {
            name: _convert(sub, f"property {name!r}", depth + 1) for name, sub in properties.items()
        }
        required = schema.get("required") or []
        if not isinstance(required, list) or not set(required) <= set(properties):
            raise SchemaRefused(f"{where} requires a property it does not declare")
        if required:
            out["required"] = required
        out.setdefault("type", "OBJECT")
    if kind == "array" or "items" in schema:
        items = schema.get("items")
        if items is None:
            raise SchemaRefused(f"{where} is a list without an item schema")
        if isinstance(items, list):
            raise SchemaRefused(f"{where} uses tuple items, which the Live API does not accept")
        out["items"] = _convert(items, f"the items of {where}", depth + 1)
        out.setdefault("type", "ARRAY")
    unknown = (
        set(schema)
        - _DROPPED
        - set(_COPIED)
        - {
            "type",
            "anyOf",
            "const",
            "enum",
            "properties",
            "required",
            "items",
        }
    )
    if unknown:
        name = sorted(unknown)[0][:40]
        raise SchemaRefused(f"{where} uses {name}, which the Live API does not accept")
    if "type" not in out and "anyOf" not in out:
        raise SchemaRefused(f"{where} has no type")
    return out


def _type(schema: dict, where: str) -> tuple[str | None, bool]:
    """(the one JSON type, nullable) of a schema; refuses several types or an unknown one."""
    raw = schema.get("type")
    if raw is None:
        return None, False
    names = raw if isinstance(raw, list) else [raw]
    nullable = "null" in names
    names = [n for n in names if n != "null"]
    if len(names) != 1:
        raise SchemaRefused(f"{where} allows several types, which the Live API does not accept")
    if names[0] not in _TYPES:
        raise SchemaRefused(f"{where} has the unknown type {str(names[0])[:20]!r}")
    return names[0], nullable
