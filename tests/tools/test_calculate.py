"""calculate: arithmetic and unit conversions from a parsed expression (never eval), refusals
as sentences, declared only where the model has no code execution, shown as a code card."""

import ast
from pathlib import Path

import pytest

from assistant.live.tool_calls import server_tools
from assistant.tools import calculate, registry


@pytest.fixture(autouse=True)
def calc_settings(settings):
    settings.PASTRA_TOOLS = ["get_weather", "web_search", "calculate"]
    settings.PASTRA_CODE_EXECUTION = True
    return settings


async def run(expression: str):
    return await registry.run(call_id="c1", name="calculate", args={"expression": expression})


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2 + 3 * 4", 14),
        ("(12.5 * 4) / 3", 16.6666666667),
        ("2**10", 1024),
        ("2^0.5", 1.41421356237),
        ("sqrt(16) + abs(-2)", 6),
        ("15% of 80", 12),
        ("-7 // 2", -4),
        ("round(pi, 3)", 3.142),
        ("2**200", 1.60693804426e60),
    ],
)
async def test_arithmetic(expression, result):
    answer = await run(expression)
    assert answer.ok, answer.response
    assert answer.response["result"] == result


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("5 km to miles", "3.10685596119 miles"),
        ("98.6 F in C", "37 C"),
        ("0 celsius to fahrenheit", "32 fahrenheit"),
        ("12 in to cm", "30.48 cm"),
        ("3 cups to ml", "709.7647095 ml"),
        ("100 km/h to mph", "62.1371192237 mph"),
        ("2 * 1.5kg in lb", "6.61386786555 lb"),
        ("90 minutes to hours", "1.5 hours"),
    ],
)
async def test_unit_conversions(expression, text):
    answer = await run(expression)
    assert answer.ok, answer.response
    assert answer.response["text"] == text


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ('__import__("os").system("true")', "only functions such as sqrt(x) can be called"),
        ("(1).real", "attribute is not allowed in a calculation"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("x + 1", "unknown name 'x'"),
        ("'a' * 3", "only numbers can be calculated"),
        ("[1, 2][0]", "subscript is not allowed in a calculation"),
        ("(lambda: 1)()", "only functions such as sqrt(x) can be called"),
        ("[x for x in (1, 2)]", "listcomp is not allowed in a calculation"),
        ("1 / 0", "division by zero"),
        ("9**9**9", "the result is too large"),
        ("sqrt(-1)", "that is outside what the function accepts (math domain error)"),
        ("5 kg to km", "cannot convert mass to length"),
        ("2 +", "cannot read '2 +' as arithmetic"),
        ("1+" * 150 + "1", "the expression is longer than 200 characters"),
    ],
)
async def test_anything_but_arithmetic_is_refused_with_a_sentence(expression, error):
    answer = await run(expression)
    assert not answer.ok
    assert answer.response == {"status": "error", "error": error, "retryable": False}


def test_the_evaluator_never_calls_eval_or_a_subprocess():
    nodes = list(ast.walk(ast.parse(Path(calculate.__file__).read_text())))
    called = {n.func.id for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    imported = {
        a.name for n in nodes if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names
    }
    imported |= {n.module for n in nodes if isinstance(n, ast.ImportFrom)}
    assert not called & {"eval", "exec", "compile", "__import__"}
    assert not imported & {"subprocess", "os", "builtins"}


def names(model: str) -> list[str]:
    entries = server_tools(model)
    return [d["name"] for e in entries for d in e.get("functionDeclarations", [])]


def test_declared_only_to_models_without_code_execution(calc_settings):
    # gemini-3.8-live: code execution "not supported" (Google's model page, Sept 2026).
    assert "calculate" in names("gemini-3.8-live")
    # A model the table does not know is offered codeExecution instead.
    assert "calculate" not in names("gemini-9-unknown")
    assert {"codeExecution": {}} in server_tools("gemini-9-unknown")
    # Without the deployment's code execution, every model gets calculate.
    calc_settings.PASTRA_CODE_EXECUTION = False
    assert "calculate" in names("gemini-9-unknown")


async def test_a_calculation_carries_a_code_card():
    answer = await run("5 km to miles")
    assert answer.card == {
        "language": "calculate",
        "code": "5 km to miles",
        "output": "3.10685596119 miles",
    }
