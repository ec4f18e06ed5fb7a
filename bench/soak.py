"""`make soak`: Pastra under steady load for a long time, its memory, open file descriptors and
asyncio tasks sampled every minute; they must stay flat.

    DATABASE_URL=postgres://… REDIS_URL=redis://… python -m bench.soak --minutes 30 --sessions 200

N clients stream audio (and a JPEG a second) through Pastra to the echo-mode emulator; each
one closes after `--session-seconds` and connects again at once (staggered, so the churn is
steady), which is how leaks of a session's close show. A resource is flat when its last
sample is within the tolerance of the sample at the end of the warm-up (the first minutes).
Prints a Markdown table for docs/performance.md and writes bench/results/soak.json. Not in CI.
"""

from __future__ import annotations

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

from bench.loadgen import Load, run_load
from bench.procs import ROOT, free_port, pin, rss_kb, start, start_emulator, stop_all
from bench.servers import drop_database, pastra_env, prepare_pastra, scrape, server_command

OUT = ROOT / "bench" / "results" / "soak.json"
WARMUP_MINUTES = 2
# Flat: RSS within 10 % (allocator arenas settle), descriptors and tasks within 5 % + a few.
TOLERANCE = {"rss_mb": (0.10, 5.0), "fds": (0.05, 5), "tasks": (0.05, 10)}


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def flat(samples: list[dict], warmup: int) -> dict[str, bool]:
    base = samples[min(warmup, len(samples) - 1)]
    last = samples[-1]
    verdict = {}
    for key, (share, slack) in TOLERANCE.items():
        verdict[key] = last[key] <= base[key] * (1 + share) + slack
    return verdict


def slope_per_10_minutes(samples: list[dict], key: str) -> float:
    """Least-squares slope of `key` over the last two thirds of the run, per 10 minutes: a
    leak shows as a steady slope, a one-off step (a backlog's high-water) does not."""
    tail = samples[len(samples) // 3 :]
    if len(tail) < 3:
        return 0.0
    xs, ys = [s["minute"] for s in tail], [float(s[key]) for s in tail]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mx) ** 2 for x in xs) or 1.0
    return round(10 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread, 2)


async def sample_every(pid: int, port: int, seconds: float, until: float, samples: list[dict]):
    t0 = time.monotonic()
    while True:
        metrics = scrape(port)
        samples.append(
            {
                "minute": round((time.monotonic() - t0) / 60, 1),
                "rss_mb": round(rss_kb(pid) / 1024, 1),
                "fds": fds(pid),
                "tasks": int(metrics.get("pastra_asyncio_tasks", -1)),
                "sessions": int(
                    sum(v for k, v in metrics.items() if k.startswith("pastra_live_sessions"))
                ),
            }
        )
        print("  " + json.dumps(samples[-1]), flush=True)
        if time.time() >= until:
            return
        await asyncio.sleep(min(seconds, max(0.0, until - time.time())))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--session-seconds", type=float, default=300.0)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="uvicorn")  # production
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    pin(0, 0)
    procs: list[subprocess.Popen] = []
    env = None
    samples: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pastra-soak-") as tmpdir:
        try:
            emu, emu_url = start_emulator(connection_seconds=args.minutes * 60 + 600)
            procs.append(emu)
            env = pastra_env(Path(tmpdir), emu_url)
            token, cookie = prepare_pastra(env, users=args.sessions)
            port = free_port()
            server = start(server_command(args.server, port), env, port, cpu=1)
            procs.append(server)
            until = time.time() + args.minutes * 60
            half = args.sessions // 2  # half on each path
            common = {
                "url": f"ws://127.0.0.1:{port}",
                "seconds": args.session_seconds,
                "until": until,
                "key": token,
                "cookie": cookie,
                "origin": f"http://127.0.0.1:{port}",
            }
            loads = [
                run_load(Load(path="gemini", sessions=half, **common), max(1, half // 100), {0}),
                run_load(
                    Load(path="web", sessions=args.sessions - half, **common),
                    max(1, (args.sessions - half) // 100),
                    {0},
                ),
            ]
            sampler = sample_every(server.pid, port, args.every, until, samples)
            (gemini, _), (web, _), _ = await asyncio.gather(*loads, sampler)
        finally:
            stop_all(procs)
            if env is not None:
                drop_database(env)
    results = gemini + web
    sent = sum(r.sent for r in results)
    lost = sent - sum(r.received for r in results)
    warmup = round(WARMUP_MINUTES * 60 / args.every)
    verdict = flat(samples, warmup)
    steady = flat(samples, len(samples) // 3)  # from a third of the run on
    slopes = {key: slope_per_10_minutes(samples, key) for key in TOLERANCE}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        "command": " ".join(["python -m bench.soak", *sys.argv[1:]]),
        "server": args.server,
        "database": "postgresql" if os.environ.get("DATABASE_URL") else "sqlite",
        "channel_layer": "redis" if os.environ.get("REDIS_URL") else "in-memory",
        "sessions": args.sessions,
        "minutes": args.minutes,
        "sent": sent,
        "lost": lost,
        "driver_stalls": sum(r.stalls for r in results),
        "client_errors": [r.error for r in results if r.error][:5],
        "flat": verdict,
        "flat_from_a_third": steady,
        "slope_per_10_minutes": slopes,
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print("\n| minute | RSS (MB) | open fds | asyncio tasks | live sessions |")
    print("|---|---|---|---|---|")
    for s in samples:
        print(f"| {s['minute']} | {s['rss_mb']} | {s['fds']} | {s['tasks']} | {s['sessions']} |")
    print(f"\nsent {sent} audio chunks, lost {lost}; flat after the warm-up: {verdict}")
    print(f"flat from a third of the run on: {steady}; slope per 10 minutes: {slopes}")
    print(f"written to {args.out}")
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
