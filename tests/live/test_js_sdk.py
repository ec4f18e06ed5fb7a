"""The official Gemini JS SDK (@google/genai, pinned in tests/sdk_js/package.json, installed by
`make test`) through Pastra (daphne over TLS, trusted with NODE_EXTRA_CA_CERTS) to the
emulator (issue 11): a text turn, a refused turn's `turnCompleteReason`, `waitingForInput`,
`interactionStatus`, and an ephemeral token minted with `authTokens.create` and used once."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("settled"),
]

SDK_DIR = Path(__file__).resolve().parent.parent / "sdk_js"


@pytest.fixture
def run_js(pastra_tls, tls_files):
    node = shutil.which("node")
    missing = (
        "needs node (>= 20)"
        if node is None
        else "needs the JS SDK: npm ci --prefix tests/sdk_js (make test does it)"
        if not (SDK_DIR / "node_modules" / "@google" / "genai").is_dir()
        else None
    )
    if missing:
        if REQUIRE_SERVICES:
            pytest.fail(f"PASTRA_REQUIRE_SERVICES=1 but this test {missing}", pytrace=False)
        pytest.skip(missing)

    def run(key: str, mode: str, *texts: str) -> list[dict]:
        done = subprocess.run(
            [node, str(SDK_DIR / "live.mjs"), pastra_tls.base_url, key, mode, *texts],
            capture_output=True,
            text=True,
            timeout=60,
            env={"NODE_EXTRA_CA_CERTS": tls_files[0], "PATH": "/usr/bin:/bin"},
        )
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert done.returncode in (0, 3), done.stderr[-2000:]
        return lines

    return run


def test_js_sdk_turns_and_the_new_fields(run_js, alice_token):
    hello, refused, waiting = run_js(alice_token, "turns", "hello from JS", "/refuse", "/wait")
    assert hello == {
        "said": "You said: hello from JS",
        "reason": None,
        "waiting": False,
        "status": "IDLE",
    }
    assert (refused["said"], refused["reason"]) == ("", "PROHIBITED_INPUT_CONTENT")
    assert (waiting["reason"], waiting["waiting"]) == ("NEED_MORE_INPUT", True)


def test_js_sdk_ephemeral_token(run_js, alice_token):
    token, turn = run_js(alice_token, "ephemeral", "hello with a token")
    assert token["token"].startswith("auth_tokens/")
    assert turn["said"] == "You said: hello with a token"


def test_js_sdk_refused_without_a_valid_key(run_js):
    (closed,) = run_js("pst_not-a-token", "turns", "hello")
    assert closed["closed"] == 1007
    assert "API key not valid" in closed["reason"]
