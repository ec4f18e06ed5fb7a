"""`make bench`: direct vs bare relay vs Channels relay vs Pastra against one echo-mode
emulator, in one run.

Prints a table and writes bench/results/latest.json (SPEC section 8). Latencies are round trips
per 100 ms audio chunk as the client sees them; "added" figures subtract direct's at the same N.
The load generator and the emulator share CPU 0; the relay under test gets CPU 1.

`--server daphne uvicorn` serves Pastra with each ASGI server in turn under the same load
(setups `pastra` and `pastra-uvicorn`; uvicorn needs `pip install 'uvicorn[standard]'`):
docs/asgi-server.md. `cpu_us_per_msg` counts the whole run (connects, auth, setup, close);
`stream_cpu_us_per_msg` only the streaming phase.
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import run_clients
from bench.procs import ROOT, cpu_seconds, free_port, pin, rss_kb, start

RESULTS = ROOT / "bench" / "results" / "latest.json"
WS_MAX_BYTES = 1048576  # as in the Makefile's `run` and the Dockerfile's CMD (docs/asgi-server.md)


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
            sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
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
        "DJANGO_SETTINGS_MODULE": "pastra_site.settings",
    }
    if os.environ.get("DATABASE_URL"):
        # Never benchmark into the developer's database: use a throw-away one on the same server.
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/pastra_bench"
    return env


def prepare_pastra(env: dict) -> str:
    """Migrate a throw-away database and return a fresh access token for the bench user."""
    if env["DATABASE_URL"].startswith("postgres"):
        admin = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        code = (
            "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True);"
            "c.execute('DROP DATABASE IF EXISTS pastra_bench');"
            "c.execute('CREATE DATABASE pastra_bench')"
        )
        subprocess.run([sys.executable, "-c", code, admin], check=True, env=env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    code = (
        "import django; django.setup();"
        "from assistant.models import User; from assistant.services import access_token_create;"
        "u, _ = User.objects.get_or_create(username='bench');"
        "print(access_token_create(user=u, name='bench')[1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def steady_cpu(pid: int, sessions: int, seconds: float) -> tuple[float, float]:
    """Relay CPU and wall seconds over the streaming phase only (connects and setups
    excluded): loadgen starts streaming 1 s + 10 ms/session after it begins."""
    await asyncio.sleep(1.0 + sessions * 0.01 + 1.0)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(max(1.0, seconds - 1.5))
    return cpu_seconds(pid) - cpu0, time.monotonic() - t0


async def measure(setup: str, url: str, key: str, sessions: int, seconds: float, pid: int | None):
    cpu0 = cpu_seconds(pid) if pid else 0.0
    rss0 = rss_kb(pid) if pid else 0
    sampler = asyncio.create_task(steady_cpu(pid, sessions, seconds)) if pid else None
    results = await run_clients(url, key, sessions, seconds)
    cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    steady = await sampler if sampler else None
    rss = rss_kb(pid) if pid else 0
    rtts = [r for res in results for r in res.rtts_ms]
    sent = sum(r.sent for r in results)
    received = sum(r.received for r in results)
    errors = [r.error for r in results if r.error]
    messages = sent + received
    return {
        "setup": setup,
        "sessions": sessions,
        "p50_ms": round(pct(rtts, 0.50), 2),
        "p99_ms": round(pct(rtts, 0.99), 2),
        "connect_p50_ms": round(statistics.median([r.connect_ms for r in results]), 1),
        "cpu_us_per_msg": round(cpu * 1e6 / messages, 1) if pid and messages else None,
        # Each session streams 10 chunks/s up and gets 10 back.
        "stream_cpu_us_per_msg": (
            round(steady[0] * 1e6 / (steady[1] * sessions * 20), 1) if steady else None
        ),
        "cpu_percent": round(cpu * 100 / (seconds + 3), 1) if pid else None,
        "rss_kb_per_session": round((rss - rss0) / sessions) if pid else None,
        "sent": sent,
        "lost": sent - received,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def add_ratios(runs: list[dict]) -> None:
    direct = {r["sessions"]: r for r in runs if r["setup"] == "direct"}
    bare = {r["sessions"]: r for r in runs if r["setup"] == "bare"}
    for r in runs:
        d = direct.get(r["sessions"])
        if d and r["setup"] != "direct":
            r["added_p50_ms"] = round(r["p50_ms"] - d["p50_ms"], 2)
            r["added_p99_ms"] = round(r["p99_ms"] - d["p99_ms"], 2)
    channels = {r["sessions"]: r for r in runs if r["setup"] == "channels"}
    for r in runs:
        c = channels.get(r["sessions"])
        both = c and c.get("stream_cpu_us_per_msg") and r.get("stream_cpu_us_per_msg")
        if r["setup"].startswith("pastra") and both:  # Pastra's own cost
            r["stream_cpu_ratio_to_channels"] = round(
                r["stream_cpu_us_per_msg"] / c["stream_cpu_us_per_msg"], 2
            )
    for r in runs:
        b = bare.get(r["sessions"])
        if (r["setup"].startswith("pastra") or r["setup"] == "channels") and b:
            if b.get("added_p99_ms"):
                r["added_p99_ratio_to_bare"] = round(
                    r["added_p99_ms"] / max(b["added_p99_ms"], 0.01), 2
                )
            if b.get("cpu_us_per_msg"):
                r["cpu_ratio_to_bare"] = round(r["cpu_us_per_msg"] / b["cpu_us_per_msg"], 2)
            if b.get("stream_cpu_us_per_msg") and r.get("stream_cpu_us_per_msg"):
                r["stream_cpu_ratio_to_bare"] = round(
                    r["stream_cpu_us_per_msg"] / b["stream_cpu_us_per_msg"], 2
                )


def print_table(runs: list[dict]) -> None:
    cols = [
        "setup",
        "sessions",
        "p50_ms",
        "p99_ms",
        "added_p50_ms",
        "added_p99_ms",
        "cpu_us_per_msg",
        "stream_cpu_us_per_msg",
        "stream_cpu_ratio_to_bare",
        "stream_cpu_ratio_to_channels",
        "rss_kb_per_session",
        "connect_p50_ms",
        "sent",
        "lost",
        "errors",
    ]
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in runs:
        print(" | ".join(f"{'' if r.get(c) is None else r.get(c)!s:>14}" for c in cols))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, under 2 minutes")
    parser.add_argument("--sessions", type=int, nargs="*", help="session counts to measure")
    parser.add_argument("--seconds", type=float, help="streaming seconds per measurement")
    parser.add_argument("--setups", nargs="*", default=["direct", "bare", "channels", "pastra"])
    parser.add_argument(
        "--server",
        nargs="+",
        choices=["daphne", "uvicorn"],
        default=["daphne"],
        help="ASGI server(s) for the pastra setup, measured in turn under the same load",
    )
    parser.add_argument(
        "--uvicorn-ws",
        choices=["websockets-sansio", "websockets", "wsproto"],
        default="websockets-sansio",
        help="uvicorn's WebSocket implementation (`websockets` is the legacy API)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args()
    counts = args.sessions or ([10, 50] if args.quick else [50, 100, 200])
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    pin(0, 0)

    procs: list[subprocess.Popen] = []
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pastra-bench-") as tmpdir:
        try:
            emu_port = free_port()
            emu_env = {
                **os.environ,
                "EMULATOR_MODE": "echo",
                "EMULATOR_MAX_SESSIONS": "100000",
                "EMULATOR_CONNECTION_SECONDS": "3600",
                "EMULATOR_API_KEY": "",
            }
            emu = start(
                [sys.executable, "-m", "gemini_emulator", "--port", str(emu_port)],
                emu_env,
                emu_port,
                cpu=0,
            )
            procs.append(emu)
            emu_url = f"ws://127.0.0.1:{emu_port}"

            targets = {"direct": (emu_url, "bench", None)}
            if "bare" in args.setups:
                port = free_port()
                bare = start(
                    [
                        sys.executable,
                        "-m",
                        "bench.bare_relay",
                        "--port",
                        str(port),
                        "--upstream",
                        emu_url,
                    ],
                    dict(os.environ),
                    port,
                    cpu=1,
                )
                procs.append(bare)
                targets["bare"] = (f"ws://127.0.0.1:{port}", "bench", bare.pid)
            if "channels" in args.setups:
                port = free_port()
                command = server_command("daphne", port, app="bench.channels_relay:application")
                relay_env = {**os.environ, "BENCH_UPSTREAM": emu_url}
                relay_env.pop("DJANGO_SETTINGS_MODULE", None)
                channels = start(command, relay_env, port, cpu=1)
                procs.append(channels)
                targets["channels"] = (f"ws://127.0.0.1:{port}", "bench", channels.pid)
            pastra_setups = []
            if "pastra" in args.setups:
                env = pastra_env(Path(tmpdir), emu_url)
                token = prepare_pastra(env)
                for server in args.server:
                    # Both servers stay up on CPU 1; only the one under load uses it.
                    port = free_port()
                    command = server_command(server, port, uvicorn_ws=args.uvicorn_ws)
                    proc = start(command, env, port, cpu=1)
                    procs.append(proc)
                    setup = "pastra" if server == "daphne" else f"pastra-{server}"
                    targets[setup] = (f"ws://127.0.0.1:{port}", token, proc.pid)
                    pastra_setups.append(setup)

            for n in counts:
                for setup in ("direct", "bare", "channels", *pastra_setups):
                    if setup in targets:
                        url, key, pid = targets[setup]
                        run = await measure(setup, url, key, n, seconds, pid)
                        runs.append(run)
                        print(
                            f"  {setup:>6} N={n:<4} p50={run['p50_ms']} ms p99={run['p99_ms']} ms "
                            f"lost={run['lost']} errors={run['errors']} {run['first_error']}",
                            flush=True,
                        )
                        await asyncio.sleep(1.0)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    add_ratios(runs)
    capacity = {}
    for setup in sorted({r["setup"] for r in runs} - {"direct"}):
        ok = [
            r["sessions"]
            for r in runs
            if r["setup"] == setup
            and r["lost"] == 0
            and r["errors"] == 0
            and r.get("added_p99_ms", 1e9) < 20
        ]
        capacity[setup] = max(ok) if ok else 0
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        "quick": args.quick,
        "servers": args.server,
        "uvicorn_ws": args.uvicorn_ws if "uvicorn" in args.server else None,
        "seconds": seconds,
        "max_sessions_added_p99_under_20ms": capacity,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print_table(runs)
    print(f"\nlargest N with added p99 < 20 ms and nothing lost (of those measured): {capacity}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
