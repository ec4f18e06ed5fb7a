"""The live bridge's own figure: CPU per message and added latency at N sessions (50 by
default), Pastra vs a bare `websockets` relay vs direct, in one run, bounded in time.

    python -m bench.relay_compare [--sessions 50] [--seconds 10]

Each client streams 100 ms PCM chunks in real time over the Gemini wire protocol; the
emulator (EMULATOR_MODE=echo) answers each at once with the same bytes. The relay under test
(bare relay or daphne+Pastra) runs alone on CPU 1; emulator and clients share CPU 0. CPU per
message = relay process CPU time / (messages up + messages down). Writes
bench/results/relay_compare.json.
"""

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import run_clients
from bench.procs import ROOT, cpu_seconds, free_port, pin, start

OUT = ROOT / "bench" / "results" / "relay_compare.json"
BARE = [sys.executable, "-m", "bench.bare_relay"]
DAPHNE = [sys.executable, "-m", "daphne", "-b", "127.0.0.1"]


def pastra_env(tmp: Path, upstream: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pastra_site.settings",
        "DEBUG": "0",
        "SECRET_KEY": "relay-compare-" + "k" * 50,
        "PASTRA_HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "PASTRA_UPSTREAM_URL": upstream,
        "PASTRA_MAX_SESSIONS_PER_USER": "100000",
        "PASTRA_DAILY_SECONDS_PER_USER": "100000000",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)  # in-memory layer: one process; control only, never per message
    return env


def prepare_pastra(env: dict) -> str:
    run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True, "text": True}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], **run)
    code = (
        "import django; django.setup(); from assistant.models import User;"
        "User.objects.get_or_create(username='bench')"
    )
    subprocess.run([sys.executable, "-c", code], **run)
    out = subprocess.run([sys.executable, "manage.py", "create_access_token", "bench"], **run)
    return out.stdout.strip().splitlines()[-1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")


async def steady_cpu(pid: int, sessions: int, seconds: float) -> tuple[float, float]:
    """Relay CPU seconds and wall seconds over the streaming phase only (connects and
    setups excluded): loadgen starts streaming 1 s + 10 ms/session after it begins."""
    await asyncio.sleep(1.0 + sessions * 0.01 + 1.0)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(max(1.0, seconds - 1.5))
    return cpu_seconds(pid) - cpu0, time.monotonic() - t0


async def measure(setup, url, key, sessions, seconds, pid) -> dict:
    cpu0 = cpu_seconds(pid) if pid else 0.0
    sampler = asyncio.create_task(steady_cpu(pid, sessions, seconds)) if pid else None
    results = await run_clients(url, key, sessions, seconds)
    cpu = cpu_seconds(pid) - cpu0 if pid else 0.0
    steady = await sampler if sampler else None
    rtts = [r for res in results for r in res.rtts_ms]
    sent = sum(r.sent for r in results)
    received = sum(r.received for r in results)
    errors = [r.error for r in results if r.error]
    return {
        "setup": setup,
        "sessions": sessions,
        "p50_ms": round(pct(rtts, 0.5), 2),
        "p99_ms": round(pct(rtts, 0.99), 2),
        # Streaming only: each session sends 10 chunks/s and gets 10 back.
        "cpu_us_per_msg": (
            round(steady[0] * 1e6 / (steady[1] * sessions * 20), 1) if steady else None
        ),
        # Including connects, auth, setup, recording start and close.
        "cpu_us_per_msg_all": round(cpu * 1e6 / (sent + received), 1) if pid and sent else None,
        "sent": sent,
        "lost": sent - received,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    pin(0, 0)
    procs: list[subprocess.Popen] = []
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pastra-relay-") as tmp:
        try:
            emu_port = free_port()
            emu_env = {**os.environ, "EMULATOR_MODE": "echo", "EMULATOR_MAX_SESSIONS": "0"}
            emu_env["EMULATOR_CONNECTION_SECONDS"] = "0"
            procs.append(
                start(
                    [sys.executable, "-m", "gemini_emulator", "--port", str(emu_port)],
                    emu_env,
                    emu_port,
                    cpu=0,
                )
            )
            emu_url = f"ws://127.0.0.1:{emu_port}"
            bare_port = free_port()
            bare = start(
                [*BARE, "--port", str(bare_port), "--upstream", emu_url],
                dict(os.environ),
                bare_port,
                cpu=1,
            )
            procs.append(bare)
            env = pastra_env(Path(tmp), emu_url)
            token = prepare_pastra(env)
            port = free_port()
            daphne = start(
                [*DAPHNE, "-p", str(port), "pastra_site.asgi:application"],
                env,
                port,
                cpu=1,
            )
            procs.append(daphne)
            targets = [
                ("direct", emu_url, "bench", None),
                ("bare", f"ws://127.0.0.1:{bare_port}", "bench", bare.pid),
                ("pastra", f"ws://127.0.0.1:{port}", token, daphne.pid),
            ]
            await run_clients(emu_url, "bench", args.sessions, 2.0)  # warm-up, not measured
            for setup, url, key, pid in targets:
                run = await measure(setup, url, key, args.sessions, args.seconds, pid)
                runs.append(run)
                print(f"  {setup:>6}: {run}", flush=True)
                await asyncio.sleep(1.0)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    direct, bare_run, pastra = runs
    for run in (bare_run, pastra):
        run["added_p50_ms"] = round(run["p50_ms"] - direct["p50_ms"], 2)
        run["added_p99_ms"] = round(run["p99_ms"] - direct["p99_ms"], 2)
    if bare_run["cpu_us_per_msg"]:
        pastra["cpu_ratio_to_bare"] = round(
            pastra["cpu_us_per_msg"] / bare_run["cpu_us_per_msg"], 2
        )
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        "seconds": args.seconds,
        "runs": runs,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print()
    cols = ["setup", "sessions", "p50_ms", "p99_ms", "added_p50_ms", "added_p99_ms"]
    cols += ["cpu_us_per_msg", "cpu_ratio_to_bare", "cpu_us_per_msg_all", "sent", "lost"]
    print(" | ".join(f"{c:>12}" for c in cols))
    for run in runs:
        print(" | ".join(f"{'' if run.get(c) is None else run.get(c)!s:>12}" for c in cols))
    print(f"written to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
