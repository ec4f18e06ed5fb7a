"""The emulator package's layout: no import cycles, nothing reaches back into the server.

Sessions get their shared state from `EmulatorContext`; only the entry points (`__init__`,
`cli`, `__main__`) may import `gemini_emulator.server`. Each module imports on its own, has
a docstring saying what it is for, and stays small enough to read in one go.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gemini_emulator"
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))
ENTRY_POINTS = {"__init__", "cli", "__main__"}
MAX_LINES = 400


def _imports(name: str) -> set[str]:
    """The package modules `name` imports, TYPE_CHECKING blocks and function bodies included."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "gemini_emulator" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "gemini_emulator":
                    continue
                rest = parts[1:]
            elif node.level == 1:
                rest = (node.module or "").split(".") if node.module else []
            else:
                continue
            if rest:
                found.add(rest[0])
            else:  # `from . import x`: x is a module of the package
                found.update(alias.name for alias in node.names if alias.name in MODULES)
    return found


def test_the_package_has_the_expected_modules():
    assert set(MODULES) >= {
        "__init__",
        "__main__",
        "cli",
        "config",
        "context",
        "handshake",
        "inputs",
        "models",
        "protocol",
        "rest",
        "resumption",
        "rules",
        "schema",
        "scripts",
        "server",
        "session",
        "signals",
        "speech",
        "stats",
        "tokens",
        "turns",
        "usage",
        "vad",
    }


def test_only_the_entry_points_import_the_server():
    importers = {name for name in MODULES if "server" in _imports(name)}
    assert importers <= ENTRY_POINTS, importers


def test_the_module_import_graph_has_no_cycle():
    graph = {name: _imports(name) - {"__init__"} for name in MODULES if name != "__init__"}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join((*path[path.index(name) :], name)))
        if name in done:
            return
        for dependency in sorted(graph.get(name, ())):
            visit(dependency, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


@pytest.mark.parametrize("name", MODULES)
def test_every_module_is_short_and_says_what_it_is_for(name):
    source = (PACKAGE / f"{name}.py").read_text()
    assert len(source.splitlines()) <= MAX_LINES
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, f"{name}.py has no module docstring"
    assert source.startswith('"""'), f"{name}.py does not open with its docstring"
    assert docstring.splitlines()[0].strip()


@pytest.mark.parametrize("name", [name for name in MODULES if name != "__init__"])
def test_every_module_imports_alone_in_a_fresh_interpreter(name):
    """With the package's `__init__` bypassed, so that no other module's import comes first;
    the server gets loaded only by the modules allowed to import it."""
    code = (
        "import importlib, sys, types\n"
        f"package = types.ModuleType('gemini_emulator'); package.__path__ = [{str(PACKAGE)!r}]\n"
        "sys.modules['gemini_emulator'] = package\n"
        f"importlib.import_module('gemini_emulator.{name}')\n"
        "print('gemini_emulator.server' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(name in ENTRY_POINTS or name == "server")


def test_the_package_imports_in_a_fresh_interpreter():
    code = "import gemini_emulator; print(sorted(gemini_emulator.__all__))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        ["EmulatorConfig", "EmulatorServer", "EmulatorThread", "MODELS", "ModelSpec"]
    )
