"""MCP tool names and schemas as the Live API gets them: namespacing that cannot collide, and
JSON Schema translated into Gemini's subset, or refused with a reason for staff."""

import re

import pytest

from assistant.tools.mcp_schema import SchemaRefused, namespaced, server_part, to_gemini

GEMINI_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@pytest.mark.parametrize(
    ("server", "tool", "name"),
    [
        ("files", "read_file", "files__read_file"),
        ("my-files", "read.file", "my_files__read_file"),
        ("a__b", "c", "a_b__c"),  # no `__` inside the server part ...
        ("a", "b__c", "a__b__c"),  # ... so the first `__` always ends it
        ("Docs", "search/pages", "Docs__search_pages"),
    ],
)
def test_names_are_server__tool_reduced_to_safe_characters(server, tool, name):
    assert namespaced(server, tool) == name
    assert GEMINI_NAME.match(name)


def test_two_servers_never_collide_and_long_names_stay_within_64():
    assert namespaced("a__b", "c") != namespaced("a", "b__c")
    long = namespaced("server", "t" * 100)
    other = namespaced("server", "t" * 99 + "u")
    assert len(long) == len(other) == 64
    assert long != other
    assert long.startswith("server__ttt")


def test_a_server_name_must_start_with_a_letter():
    with pytest.raises(ValueError, match="must start with a letter"):
        server_part("1st")
    with pytest.raises(ValueError, match="must start with a letter"):
        server_part("__")


def test_pydantic_style_schema_becomes_gemini_schema():
    schema = {
        "type": "object",
        "title": "searchArguments",
        "additionalProperties": False,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {
            "query": {"type": "string", "description": "what to find", "minLength": 1},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "mode": {"const": "fast"},
            "near": {"type": ["number", "null"]},
        },
        "required": ["query"],
    }
    assert to_gemini(schema) == {
        "type": "OBJECT",
        "title": "searchArguments",
        "properties": {
            "query": {"type": "STRING", "description": "what to find", "minLength": 1},
            "limit": {"type": "INTEGER", "nullable": True, "default": None},
            "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["a", "b"]}},
            "mode": {"type": "STRING", "enum": ["fast"]},
            "near": {"type": "NUMBER", "nullable": True},
        },
        "required": ["query"],
    }


def test_no_arguments_means_no_parameters():
    assert to_gemini({"type": "object", "properties": {}}) is None
    assert to_gemini(None) is None


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}},
            "property 'a' uses a reference ($ref)",
        ),
        (
            {"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}},
            "property 'a' uses oneOf",
        ),
        (
            {"type": "object", "properties": {"a": {"type": ["string", "integer"]}}},
            "property 'a' allows several types",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 2]}}},
            "property 'a' has an enum of values that are not strings",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "object"}}},
            "property 'a' is an object without properties",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
            "the input schema requires a property it does not declare",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "array"}}},
            "property 'a' is a list without an item schema",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "if": {}}}},
            "property 'a' uses a conditional",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "x-custom": 1}}},
            "property 'a' uses x-custom, which the Live API does not accept",
        ),
        ({"type": "array", "items": {"type": "string"}}, "its input schema is not of type object"),
    ],
)
def test_what_gemini_would_refuse_is_refused_with_a_reason(schema, reason):
    with pytest.raises(SchemaRefused) as refused:
        to_gemini(schema)
    assert str(refused.value).startswith(reason)


def test_nesting_and_size_are_bounded():
    deep: dict = {"type": "string"}
    for _ in range(8):
        deep = {"type": "object", "properties": {"x": deep}}
    with pytest.raises(SchemaRefused, match="nested more than 6 levels"):
        to_gemini(deep)
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(1000)}}
    with pytest.raises(SchemaRefused, match="larger than 16000 bytes"):
        to_gemini(big)
