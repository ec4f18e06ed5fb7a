"""Runs the front-end unit tests (tests/js/*.test.mjs) with node's built-in test runner, so
`make test` covers the resampler, the jitter buffer, the socket's reconnect policy and the
other pure modules of static/js."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.mjs"))


def test_js_unit_tests_pass():
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node (>= 20) for the front-end unit tests")
    assert JS_TESTS, "no tests/js/*.test.mjs found"
    result = subprocess.run(
        [node, "--test", "--test-reporter=dot", *map(str, JS_TESTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"
