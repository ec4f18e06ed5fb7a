"""The README's SDK example, run as written against `make run` (issue 11): `make run` serves
TLS with its own self-signed certificate, the README's `create_access_token` command makes the
token, and the README's Python block, saved as a file, prints the emulator's reply when run
with the README's `SSL_CERT_FILE`. Only the ports (free ones, not 8000/8443) and the token
are put in, as a reader would paste theirs."""

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.live.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


def clean_env(tmp_path: Path) -> dict:
    """The environment of someone trying Pastra: no upstream, key or services configured."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PASTRA_", "GEMINI_", "EMULATOR_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "SSL_CERT_FILE", "DEBUG")
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'readme.sqlite3'}"
    return env


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


@pytest.fixture
def make_run(tmp_path):
    if not Path(PYTHON).exists():
        pytest.skip("no .venv: run `make test`")
    port, tls_port = free_port(), free_port()
    env = clean_env(tmp_path)
    tls_dir = tmp_path / "tls"
    log = open(tmp_path / "make-run.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}", f"TLS_PORT={tls_port}", f"TLS_DIR={tls_dir}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(tls_port, process)
        yield {"env": env, "port": port, "tls_port": tls_port, "tls_dir": tls_dir}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readme_sdk_example_works_against_make_run(make_run, tmp_path):
    env = make_run["env"]
    manage(
        env, "shell", "-c", "from assistant.models import User; User.objects.create_user('alice')"
    )
    steps = readme_block("bash", "create_access_token")
    (command,) = [line for line in steps.splitlines() if "create_access_token" in line]
    argv = shlex.split(command.split("#")[0])
    assert argv[:2] == [".venv/bin/python", "manage.py"]
    token = manage(env, *argv[2:]).strip()
    assert token.startswith("pst_")

    snippet = readme_block("python", '"api_version": "v1beta"')
    assert '"https://127.0.0.1:8443"' in snippet
    assert '"pst_..."' in snippet
    script = tmp_path / "hello.py"
    script.write_text(
        snippet.replace('"pst_..."', repr(token)).replace(
            "127.0.0.1:8443", f"127.0.0.1:{make_run['tls_port']}"
        )
    )
    # The README's command line: SSL_CERT_FILE=.local/tls/cert.pem .venv/bin/python hello.py
    assert "SSL_CERT_FILE=.local/tls/cert.pem .venv/bin/python hello.py" in README
    run_env = {**env, "SSL_CERT_FILE": str(make_run["tls_dir"] / "cert.pem")}
    done = subprocess.run(
        [PYTHON, str(script)], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "You said: Hello"

    # The ephemeral-token example: minted with the access token, used by a second client.
    ephemeral = readme_block("python", "auth_tokens.create")
    script = tmp_path / "ephemeral.py"
    script.write_text(
        ephemeral.replace('"pst_..."', repr(token)).replace(
            "127.0.0.1:8443", f"127.0.0.1:{make_run['tls_port']}"
        )
    )
    done = subprocess.run(
        [PYTHON, str(script)], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "You said: Hello from a token"
    assert "prints `You said: Hello from a token`" in README

    # Without SSL_CERT_FILE the README says the SDK refuses the certificate, by name.
    refused = subprocess.run(
        [PYTHON, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr


def test_make_run_keeps_its_certificate(tmp_path):
    """`local_tls_cert` writes once (a restart must not invalidate what clients trust)."""
    folder = tmp_path / "tls"
    env = clean_env(tmp_path)
    first = manage(env, "local_tls_cert", "--dir", str(folder)).split()
    assert first == [str(folder / "cert.pem"), str(folder / "key.pem")]
    cert = (folder / "cert.pem").read_bytes()
    assert (folder / "key.pem").stat().st_mode & 0o077 == 0  # the key is the owner's only
    manage(env, "local_tls_cert", "--dir", str(folder))
    assert (folder / "cert.pem").read_bytes() == cert
    manage(env, "local_tls_cert", "--dir", str(folder), "--force")
    assert (folder / "cert.pem").read_bytes() != cert
