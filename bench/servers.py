"""The servers a bench run starts: an ASGI server command line, Pastra's environment and
throw-away database with the bench user's credentials, and Pastra's /metrics read back."""

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from bench.procs import ROOT

WS_MAX_BYTES = 1048576  # as in the Makefile's `run` and the Dockerfile's CMD (docs/asgi-server.md)
# Every server in a run listens with uvicorn's default backlog: Twisted's (daphne) is 50 and
# asyncio's 100, and a burst beyond it waits out 1 s SYN retries, which is not the relay's cost.
BACKLOG = 2048
METRICS_TOKEN = "bench-metrics-" + "m" * 20
SCRAPED = ("pastra_event_loop_lag", "pastra_asyncio_tasks", "pastra_live_sessions")


def server_command(
    server: str,
    port: int,
    *,
    uvicorn_ws: str = "websockets-sansio",
    app: str = "pastra_site.asgi:application",
) -> list[str]:
    """An ASGI app (Pastra, or the Channels relay) under one server, configured as Pastra
    would be deployed (docs/asgi-server.md)."""
    if server == "daphne":
        return [
            sys.executable, "-m", "daphne",
            "-e", f"tcp:port={port}:interface=127.0.0.1:backlog={BACKLOG}",
            "--websocket_timeout", "86400", "--websocket_connect_timeout", "15",
            "--ping-interval", "20", "--ping-timeout", "30",
            "--websocket-max-message-size", str(WS_MAX_BYTES),
            "--websocket-max-frame-size", str(WS_MAX_BYTES),
            app,
        ]  # fmt: skip
    if server == "uvicorn" and uvicorn_ws == "websockets-sansio":  # production's launcher
        return [
            sys.executable, "-m", "pastra_site.serve", "--host", "127.0.0.1",
            "--port", str(port), "--app", app,
        ]  # fmt: skip
    if server == "uvicorn":  # another WebSocket implementation: plain uvicorn
        return [
            sys.executable, "-m", "uvicorn", app,
            "--host", "127.0.0.1", "--port", str(port),
            "--ws", uvicorn_ws, "--ws-per-message-deflate", "false",
            "--ws-max-size", str(WS_MAX_BYTES), "--lifespan", "off",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    raise ValueError(server)


def pastra_env(tmp: Path, upstream: str) -> dict:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "k" * 60,
        "PASTRA_HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.sqlite3'}",
        "PASTRA_UPSTREAM_URL": upstream,
        "PASTRA_MAX_SESSIONS_PER_USER": "100000",
        "PASTRA_DAILY_SECONDS_PER_USER": "100000000",
        "LOG_LEVEL": "WARNING",
        "PASTRA_METRICS_TOKEN": METRICS_TOKEN,
        "DJANGO_SETTINGS_MODULE": "pastra_site.settings",
    }
    if os.environ.get("DATABASE_URL"):
        # Never benchmark into the developer's database: use a throw-away one on the same server.
        # One per run, so that two runs on one server never share it; dropped at the end.
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        env["DATABASE_URL"] = f"{base}/pastra_bench_{os.getpid()}"
    return env


def drop_database(env: dict) -> None:
    """Drop a run's throw-away PostgreSQL database (best effort: a run may end early)."""
    if not env["DATABASE_URL"].startswith("postgres"):
        return
    admin, name = env["DATABASE_URL"].rsplit("/", 1)
    code = (
        "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True);"
        f"c.execute('DROP DATABASE IF EXISTS {name} WITH (FORCE)')"
    )
    subprocess.run([sys.executable, "-c", code, admin + "/postgres"], env=env, check=False)


def prepare_pastra(env: dict, users: int = 1) -> tuple[str, str]:
    """Migrate a throw-away database and make `users` bench users; return their access tokens
    and session cookies (the Gemini path's and the web path's credentials), each "|"-joined."""
    if env["DATABASE_URL"].startswith("postgres"):
        admin = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        name = env["DATABASE_URL"].rsplit("/", 1)[1]
        code = (
            "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True);"
            f"c.execute('DROP DATABASE IF EXISTS {name}');"
            f"c.execute('CREATE DATABASE {name}')"
        )
        subprocess.run([sys.executable, "-c", code, admin], check=True, env=env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    code = (
        "import sys, django; django.setup();"
        "from django.conf import settings; from django.test import Client;"
        "from assistant.models import User; from assistant.services import access_token_create;"
        "keys, cookies = [], [];"
        "name = settings.SESSION_COOKIE_NAME\n"
        "for i in range(int(sys.argv[1])):\n"
        "    u, _ = User.objects.get_or_create(username=f'bench{i}')\n"
        "    c = Client(); c.force_login(u)\n"
        "    keys.append(access_token_create(user=u, name='bench')[1])\n"
        "    cookies.append(name + '=' + c.cookies[name].value)\n"
        "print('|'.join(keys), '|'.join(cookies))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(users)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    tokens, cookies = out.stdout.strip().splitlines()[-1].split()
    return tokens, cookies


def scrape(port: int) -> dict[str, float]:
    """Pastra's /metrics as {sample name + labels: value} (the loop-lag histogram, tasks)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    try:
        text = urllib.request.urlopen(request, timeout=10).read().decode()  # noqa: S310 (http://127.0.0.1)
    except OSError:
        return {}
    samples = {}
    for line in text.splitlines():
        if line.startswith(SCRAPED):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
