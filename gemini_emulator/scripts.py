"""The scripted "model": what a user input asks for (SPEC section 6), decided without I/O."""

from __future__ import annotations

import ast
import json
import operator
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from .protocol import compact_json

LONG_SECONDS = 10.0
LONG_TEXT = (
    "This is a long answer from the Gemini Live emulator. It keeps talking for about ten "
    "seconds so that you have time to interrupt it. Say something, or send new content, "
    "and it will stop at once."
)

_CALL = re.compile(r"^call\s+([^\s{]+)\s*(.*)$", re.IGNORECASE | re.DOTALL)
_WEATHER = re.compile(r"weather\s+in\s+([^.,;:!?\n]+)", re.IGNORECASE)
_COMPUTE = re.compile(r"^compute\s+(.+)$", re.IGNORECASE | re.DOTALL)
_SEARCH = re.compile(r"^search\s+(?:for\s+)?(.+?)[.?!]*$", re.IGNORECASE | re.DOTALL)
_CLOSE = re.compile(r"^/close(?:\s+(\d+))?(?:\s+(.*))?$", re.IGNORECASE | re.DOTALL)
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]", re.IGNORECASE)
# Turns that end without model content, with a `turnCompleteReason` (google-genai 3.6.1
# types.py TurnCompleteReason); `/wait` also sets `waitingForInput` (SPEC section 6).
END_TURNS = {
    "/refuse": "PROHIBITED_INPUT_CONTENT",
    "/wait": "NEED_MORE_INPUT",
    "/reject": "RESPONSE_REJECTED",
    "/malformed": "MALFORMED_FUNCTION_CALL",
}


@dataclass(frozen=True)
class Command:
    """What a user text asks for. `kind` is one of: goaway, close, long, history, call,
    compute, search, plain (`You said: ...`), url (plain, plus urlContextMetadata for the
    URLs in `args`), end (no content; `text` is the turnCompleteReason), say (any other
    fixed reply)."""

    kind: str
    text: str = ""
    name: str = ""
    args: Any = None
    code: int = 0


def parse_command(text: str, tools: ToolSet) -> Command:
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered == "/goaway":
        return Command("goaway")
    match = _CLOSE.match(stripped)
    if match:
        code = int(match.group(1)) if match.group(1) else 1000
        reason = (match.group(2) or "").strip()
        if not _sendable_close_code(code):
            return Command("say", text=f"cannot close with code {code}")
        return Command("close", code=code, text=reason)
    if lowered == "/long":
        return Command("long", text=LONG_TEXT)
    if lowered == "/history":
        return Command("history")
    if lowered in END_TURNS:
        return Command("end", text=END_TURNS[lowered])
    match = _CALL.match(stripped)
    if match:
        name, raw_args = match.group(1), match.group(2).strip()
        if name not in tools.functions:
            return Command("say", text=f"no such tool: {name}")
        try:
            args = json.loads(raw_args) if raw_args else {}
        except ValueError:
            args = None
        if not isinstance(args, dict):
            return Command("say", text=f"invalid arguments for {name}")
        return Command("call", name=name, args=args)
    match = _WEATHER.search(stripped)
    weather = tools.weather_function()
    if match and weather:
        place = match.group(1).strip()
        return Command("call", name=weather, args={tools.first_parameter(weather): place})
    match = _COMPUTE.match(stripped)
    if match and tools.code_execution:
        expression = match.group(1).strip()
        if is_arithmetic(expression):
            return Command("compute", text=expression)
    match = _SEARCH.match(stripped)
    if match and tools.google_search:
        return Command("search", text=match.group(1).strip())
    if not stripped:
        return Command("plain", text="You said nothing.")
    urls = _URL.findall(stripped) if tools.url_context else []
    if urls:
        return Command("url", text=f"You said: {stripped}", args=list(dict.fromkeys(urls)))
    return Command("plain", text=f"You said: {stripped}")


def url_context_metadata(urls: list[str]) -> dict[str, Any]:
    """`urlContextMetadata` for URLs the urlContext tool "retrieved" (never fetched)."""
    return {
        "urlMetadata": [
            {"retrievedUrl": url, "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS"}
            for url in urls
        ]
    }


def _sendable_close_code(code: int) -> bool:
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or (
        3000 <= code <= 4999
    )


class ToolSet:
    """The tools a setup declared, as the script needs them."""

    def __init__(self) -> None:
        self.functions: dict[str, dict[str, Any]] = {}
        self.google_search = False
        self.code_execution = False
        self.url_context = False

    def weather_function(self) -> str | None:
        return next((name for name in self.functions if "weather" in name.lower()), None)

    def first_parameter(self, name: str) -> str:
        """The first required parameter of a function, else its first one, else "location"."""
        declaration = self.functions[name]
        schema = declaration.get("parameters") or declaration.get("parametersJsonSchema") or {}
        if isinstance(schema, dict):
            required = schema.get("required")
            if isinstance(required, list) and required and isinstance(required[0], str):
                return required[0]
            properties = schema.get("properties")
            if isinstance(properties, dict) and properties:
                return next(iter(properties))
        return "location"


# --- compute: arithmetic only, evaluated on the AST (never eval) ------------------------

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPRESSION = 200


def clean_expression(expression: str) -> str:
    for spoken, python in (("\u00d7", "*"), ("\u00f7", "/"), ("^", "**")):  # times, divide
        expression = expression.replace(spoken, python)
    return expression.rstrip(" ?.=")


def is_arithmetic(expression: str) -> bool:
    try:
        tree = ast.parse(clean_expression(expression), mode="eval")
    except (SyntaxError, ValueError):
        return False
    return len(expression) <= _MAX_EXPRESSION and all(
        isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop))
        or (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        )
        for node in ast.walk(tree)
    )


def evaluate(expression: str) -> int | float:
    """Value of an arithmetic expression; raises ArithmeticError or ValueError."""
    return _eval(ast.parse(clean_expression(expression), mode="eval").body)


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError("not a number")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1_000_000):
            raise OverflowError("exponent too large")
        value = _BINARY[type(node.op)](left, right)
        if isinstance(value, complex):
            raise ValueError("complex result")
        if isinstance(value, int) and value.bit_length() > 256:
            raise OverflowError("result too large")
        return value
    raise ValueError("not arithmetic")


# --- googleSearch grounding ---------------------------------------------------------------


def grounding_metadata(query: str, answer: str) -> dict[str, Any]:
    """Fake but well-formed grounding for `search <query>` (example.org, never fetched)."""
    uri = f"https://example.org/search?q={quote_plus(query)}"
    return {
        "webSearchQueries": [query],
        "searchEntryPoint": {
            "renderedContent": f'<div class="search-entry-point"><a href="{uri}">{query}</a></div>'
        },
        "groundingChunks": [
            {"web": {"uri": uri, "title": f"About {query}", "domain": "example.org"}}
        ],
        "groundingSupports": [
            {
                "segment": {"startIndex": 0, "endIndex": len(answer.encode()), "text": answer},
                "groundingChunkIndices": [0],
                "confidenceScores": [0.9],
            }
        ],
    }


# --- reply text ---------------------------------------------------------------------------
def returned_text(name: str, response: dict[str, Any]) -> str:
    """The spoken reply to a function response: `NAME returned <compact JSON>`, or, when the
    response reports an error (an `error` key, as Google's FunctionResponse reference puts
    it), `NAME failed: <the error as a sentence>`, as a model would say it."""
    result = response.get("response")
    if isinstance(result, dict) and result.get("error") not in (None, "", False):
        return f"{name} failed: {_error_sentence(result['error'])}"
    return f"{name} returned {compact_json({} if result is None else result)}"


def _error_sentence(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or compact_json(error)
    text = " ".join(str(error).split())[:300] or "an error"
    if text.split(" ", 1)[0].isalpha():  # a word, not a name such as get_weather
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def split_words(text: str, pieces: int) -> list[str]:
    """Cut text at spaces into `pieces` deltas (some may be empty) that concatenate to it."""
    words = text.split(" ")
    buckets: list[list[str]] = [[] for _ in range(max(1, pieces))]
    for index, word in enumerate(words):
        buckets[index * len(buckets) // len(words)].append(word)
    out, started = [], False
    for bucket in buckets:
        if not bucket:
            out.append("")
            continue
        joined = " ".join(bucket)
        out.append(" " + joined if started else joined)
        started = True
    return out
