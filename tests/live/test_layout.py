"""The bridge's layout holds (docs/architecture.md): each module one job, named in its first
line, none much over 350 lines; consumers are Channels glue only; Channels and daphne
internals are touched in one module, installed explicitly; close codes and limits are
defined once; model rules come from the capability table, not from name prefixes."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSISTANT = ROOT / "assistant"
LIVE = ASSISTANT / "live"
MAX_LINES = 360  # "about 350"
CODE = [p for p in ASSISTANT.rglob("*.py") if "migrations" not in p.parts]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def code_lines(path: Path) -> str:
    """The module without its docstrings and comments."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            body[0] = ast.Pass()
    return ast.unparse(tree)


@pytest.mark.parametrize("path", sorted(LIVE.rglob("*.py")), ids=module_name)
def test_every_bridge_module_states_its_one_job_and_stays_small(path):
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, f"{path.name}: no docstring"
    assert docstring.splitlines()[0].strip(), f"{path.name}: no first line"
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module_name(path)} has {lines} lines"


def test_consumers_are_channels_glue_only():
    path = ASSISTANT / "consumers.py"
    assert len(path.read_text().splitlines()) <= 210
    imported = {
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
    }
    assert not {m for m in imported if m.startswith("assistant.live.gemini")}, imported
    assert "orjson" not in path.read_text()


INTERNALS = re.compile(
    r"aclose_old_connections|channel_receive|\bdaphne\b|\btwisted\b|\bautobahn\b|"
    r"async def dispatch\(|async def __call__\(self, scope"
)


def test_channels_and_daphne_internals_are_touched_in_compat_only():
    offenders = [
        module_name(p) for p in CODE if p.name != "compat.py" and INTERNALS.search(code_lines(p))
    ]
    assert offenders == []
    assert INTERNALS.search(code_lines(LIVE / "compat.py"))


def test_the_daphne_fixes_are_installed_by_asgi_and_by_no_import():
    callers = [
        str(p.relative_to(ROOT))
        for p in [*CODE, *(ROOT / "pastra_site").rglob("*.py")]
        if "compat.install(" in p.read_text()
    ]
    assert callers == ["pastra_site/asgi.py"]
    script = (
        "import django; django.setup()\n"
        "from daphne.ws_protocol import WebSocketProtocol as W\n"
        "import assistant.consumers, assistant.routing, assistant.live.compat\n"
        "assert not getattr(W, '_pastra_compat', False), 'patched by an import'\n"
        "import pastra_site.asgi\n"
        "assert W._pastra_compat\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "pastra_site.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


CLOSE_CODE = re.compile(r"^\s*(?!MAX_)[A-Z_]+ = (?:1\d{3}|4\d{3})\b", re.M)
SIZE_LIMIT = re.compile(r"^\s*MAX_[A-Z_]*(?:BYTES|CHARS|FRAME|FUNCTIONS) = ", re.M)


def test_close_codes_and_limits_are_defined_once():
    codes = [module_name(p) for p in CODE if CLOSE_CODE.search(p.read_text())]
    assert codes == ["assistant.live.close_codes"]
    limits = [module_name(p) for p in LIVE.rglob("*.py") if SIZE_LIMIT.search(p.read_text())]
    assert limits == ["assistant.live.limits"]


def test_no_model_rule_is_guessed_from_a_name_prefix():
    guesses = [
        module_name(p)
        for p in CODE
        if re.search(r"startswith\(\s*['\"]gemini|['\"]native-audio['\"] in", code_lines(p))
    ]
    assert guesses == []
