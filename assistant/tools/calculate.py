"""`calculate(expression)`: arithmetic and unit conversions, evaluated safely on the server.

The tutorial's "run code" moment used Gemini's code execution, which Google documents as not
supported on gemini-3.8-live (ai.google.dev/gemini-api/docs/models/gemini-3.8-live, Sept 2026;
the bridge's table, assistant/live/gemini/models.py): this tool stands in for it, declared
only where the session's model has no code execution (`Tool.without_code_execution`).

Never `eval`, `exec` or a subprocess: the expression is parsed with `ast.parse(mode="eval")`
and walked, and only numbers, `+ - * / // % **`, unary signs, the constants and the functions
below pass; anything else (names, attributes, subscripts, strings, comprehensions, lambdas)
is refused with a sentence naming it. Bounds keep one call cheap: at most MAX_CHARS
characters and MAX_NODES nodes, integer powers below MAX_POWER_BITS bits of result.
A conversion is `<expression> <unit> to|in|as|into <unit>` (units.py): "5 km to miles",
"98.6 F in C", "3 cups to ml". "15% of 80" means 15/100*80; `^` is a power; the times and
divide signs work.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any

from assistant.tools import units
from assistant.tools.base import Behavior, Tool, ToolError

NAME = "calculate"
MAX_CHARS = 200
MAX_NODES = 80
MAX_POWER_BITS = 4096

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
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS = {
    "sqrt": math.sqrt,
    "cbrt": math.cbrt,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "log": math.log,
    "ln": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
    "hypot": math.hypot,
    "degrees": math.degrees,
    "radians": math.radians,
}
# Greedy: the last separator splits ("in" is a unit too: "12 in to cm").
_CONVERSION = re.compile(r"^(.+)\s+(?:to|in|into|as)\s+(.+?)$", re.IGNORECASE)
_TRAILING_UNIT = re.compile(r"^(.*?[0-9.)\s])\s*([A-Za-z°][A-Za-z°/0-9]*)$")
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*of\s+", re.IGNORECASE)

PARAMETERS = {
    "type": "OBJECT",
    "properties": {
        "expression": {
            "type": "STRING",
            "description": (
                "Arithmetic such as (12.5 * 4) / 3, 2**10, sqrt(2) or 15% of 80, or a unit "
                "conversion such as '5 km to miles' or '98.6 F in C'."
            ),
        }
    },
    "required": ["expression"],
}


async def calculate(*, expression: str) -> dict:
    text = expression.strip()
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_CHARS:
        raise ToolError(f"the expression is longer than {MAX_CHARS} characters")
    conversion = _split_conversion(text)
    if conversion is not None:
        left, source, target = conversion
        value = evaluate(left)
        if source.dimension != target[1].dimension:
            raise ToolError(f"cannot convert {source.dimension} to {target[1].dimension}")
        result = _tidy(units.convert(float(value), source, target[1]))
        text_result = f"{result} {target[0]}"
        return {"expression": text, "result": result, "unit": target[0], "text": text_result}
    result = _tidy(evaluate(text))
    return {"expression": text, "result": result, "text": str(result)}


def evaluate(text: str) -> int | float:
    """The value of an arithmetic expression, or ToolError."""
    prepared = _PERCENT_OF.sub(r"(\1/100)*", text).replace("^", "**")
    prepared = prepared.replace("\u00d7", "*").replace("\u00f7", "/")  # times, divide signs
    try:
        tree = ast.parse(prepared, mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot read {text!r} as arithmetic") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError("the expression is too long")
    try:
        value = _value(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError):
        raise ToolError("that is outside what the function accepts (math domain error)") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is not a finite number")
    return value


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError("only numbers can be calculated")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise ToolError("only functions such as sqrt(x) can be called")
        function = _FUNCTIONS.get(node.func.id)
        if function is None:
            raise ToolError(f"unknown function {node.func.id!r}")
        return function(*(_value(arg) for arg in node.args))
    raise ToolError(f"{type(node).__name__.lower()} is not allowed in a calculation")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if max(abs(base), 2).bit_length() * exponent > MAX_POWER_BITS:
            raise ToolError("the result is too large")
    elif abs(exponent) > 10_000:
        raise ToolError("the exponent is too large")


def _split_conversion(text: str) -> tuple[str, units.Unit, tuple[str, units.Unit]] | None:
    """(the expression, its unit, (the target's name, unit)) of '<expr> <unit> to <unit>'."""
    match = _CONVERSION.match(text)
    if match is None:
        return None
    left, target_name = match.group(1), match.group(2).strip()
    target = units.find(target_name)
    if target is None:
        return None
    words = left.split()
    for count in (3, 2, 1):
        if len(words) > count:
            unit = units.find(" ".join(words[-count:]))
            if unit is not None:
                return " ".join(words[:-count]), unit, (target_name, target)
    glued = _TRAILING_UNIT.match(left.strip())  # "5km to miles"
    if glued and (unit := units.find(glued.group(2))) is not None:
        return glued.group(1), unit, (target_name, target)
    raise ToolError(f"unknown unit in {left.strip()!r}")


def _tidy(value: int | float) -> int | float:
    """12 significant digits; a whole float as an int."""
    if isinstance(value, int):
        return value if abs(value) < 10**30 else float(f"{value:.12g}")
    value = float(f"{value:.12g}")
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def code_card(kwargs: dict, response: dict) -> dict:
    """What the web UI shows in its code and result cards for one calculation."""
    code, output = kwargs.get("expression", ""), response.get("text", "")
    return {"language": "calculate", "code": code, "output": output}


TOOL = Tool(
    name=NAME,
    description=(
        "Calculate arithmetic exactly or convert units (length, mass, volume, time, speed, "
        "area, temperature). Use it for every calculation instead of working it out yourself."
    ),
    parameters=PARAMETERS,
    handler=calculate,
    behavior=Behavior.BLOCKING,
    without_code_execution=True,
    code_card=code_card,
)
