"""`make bench`: direct vs bare relay vs Channels relay vs Pastra against one echo-mode
emulator, in one run, on both paths (Gemini's protocol and the web UI's binary PCM).

Prints a table, writes bench/results/latest.json (SPEC section 8) and draws PNG plots beside
it (bench/plots.py). Latencies are round trips per 100 ms audio chunk as the client sees them;
"added" figures subtract direct's at the same N. Each session also sends one JPEG a second.
The load generator (one process per 100 sessions) and the emulator share CPU 0; the server
under test gets CPU 1; a run whose CPU 0 was saturated is flagged `driver_bound`.

The Channels relay and Pastra are served by each ASGI server in turn under the same load
(`--server`, default both: setups `channels`, `pastra` under daphne, `make run`'s server, and
`channels-uvicorn`, `pastra-uvicorn` under production's, pastra_site/serve.py).
`cpu_us_per_msg` counts the whole run (connects, auth, setup, close); `stream_cpu_us_per_msg`
only the streaming phase, per audio message (10 up and 10 back per session and second).
"""

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import plots, profile
from bench.loadgen import Load, run_load
from bench.procs import ROOT, cpu_seconds, free_port, pin, rss_kb, start, start_emulator, stop_all
from bench.servers import drop_database, pastra_env, prepare_pastra, scrape, server_command

RESULTS = ROOT / "bench" / "results" / "latest.json"
PATHS = ("gemini", "web")
VIDEO_FPS = 1.0  # one JPEG a second per session, as a camera-on conversation sends
DRIVER_CPUS = {0}  # the emulator and the load generator; the server under test gets CPU 1
DRIVER_BOUND = 0.85  # above this share of its CPU, the driver's own queueing shows in latency


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def lag_p99_ms(before: dict, after: dict) -> float | None:
    """The p99 of loop lag between two scrapes, as the upper bound of its histogram bucket."""
    prefix = "pastra_event_loop_lag_seconds_bucket"
    buckets = sorted(
        (float(k.split('le="')[1].split('"')[0]), after[k] - before.get(k, 0.0))
        for k in after
        if k.startswith(prefix)
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= 0.99 * total:
            return round(bound * 1000, 1) if bound != float("inf") else float("inf")
    return None


async def steady_cpu(
    pids: list[int], sessions: int, seconds: float, server: int | None
) -> tuple[list[float], float, int]:
    """CPU seconds of each process and wall seconds over the streaming phase only (connects and
    setups excluded: clients start streaming 1 s + 10 ms/session after the load begins), and
    the server's RSS at the end of that window, while every session still streams."""
    await asyncio.sleep(1.0 + sessions * 0.01 + 1.0)
    cpu0, t0 = [cpu_seconds(p) for p in pids], time.monotonic()
    await asyncio.sleep(max(1.0, seconds - 1.5))
    rss = rss_kb(server) if server else 0
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    return cpu, time.monotonic() - t0, rss


def target_load(target: dict, path: str, sessions: int, seconds: float, video_fps: float) -> Load:
    """The load of `sessions` clients on `path` against one setup's server."""
    return Load(
        url=target["url"],
        path=path,
        key=target.get("key", "bench"),
        cookie=target.get("cookie", ""),
        origin=f"http://127.0.0.1:{target.get('port')}",
        sessions=sessions,
        seconds=seconds,
        video_fps=video_fps,
    )


async def warm(target: dict, path: str, video_fps: float) -> None:
    """A few sessions through a new server before any measurement, so that its first-use
    costs (imports, caches, pools) are in the idle baseline `rss_idle_kb`, not per session."""
    await run_load(target_load(target, path, 5, 1.0, video_fps))


def load_processes(sessions: int, asked: int | None) -> int:
    return asked or max(1, math.ceil(sessions / 100))


async def profiled(pid: int, sessions: int, seconds: float, out: Path) -> Path | None:
    """py-spy over the streaming phase (the same window as `steady_cpu`)."""
    await asyncio.sleep(1.0 + sessions * 0.01 + 1.0)
    return await profile.record(pid, max(1.0, seconds - 1.5), out)


async def measure(
    setup: str,
    path: str,
    target: dict,
    sessions: int,
    seconds: float,
    emu_pid: int,
    procs: int,
    profile_dir: Path | None = None,
    video_fps: float = VIDEO_FPS,
) -> dict:
    pid, port = target.get("pid"), target.get("port")
    load = target_load(target, path, sessions, seconds, video_fps)
    watched = [emu_pid] + ([pid] if pid else [])
    cpu0 = [cpu_seconds(p) for p in watched]
    metrics0 = scrape(port) if target.get("metrics") else {}
    t0 = time.monotonic()
    sampler = asyncio.create_task(steady_cpu(watched, sessions, seconds, pid))
    spy = None
    if profile_dir is not None and pid and setup.startswith("pastra"):
        out = profile_dir / f"{setup}-{path}-{sessions}.txt"
        spy = asyncio.create_task(profiled(pid, sessions, seconds, out))
    results, load_cpu = await run_load(load, procs, cpus=DRIVER_CPUS)
    wall = time.monotonic() - t0
    cpu = [cpu_seconds(p) - c for p, c in zip(watched, cpu0, strict=True)]
    steady, steady_wall, rss = await sampler
    if spy is not None and (recorded := await spy) is not None:
        print(profile.top(recorded, rows=12), flush=True)
    metrics1 = scrape(port) if target.get("metrics") else {}
    rtts = [r for res in results for r in res.rtts_ms]
    sent = sum(r.sent for r in results)
    received = sum(r.received for r in results)
    errors = [r.error for r in results if r.error]
    firsts = [r.first_audio_ms for r in results if r.first_audio_ms is not None]
    messages = sent + received
    driver = (cpu[0] + load_cpu) / wall  # emulator + load generator, sharing DRIVER_CPUS
    run = {
        "setup": setup,
        "path": path,
        "sessions": sessions,
        "p50_ms": round(pct(rtts, 0.50), 2),
        "p99_ms": round(pct(rtts, 0.99), 2),
        "connect_p50_ms": round(statistics.median([r.connect_ms for r in results]), 1),
        # The burst's last ready session: p50 near it means the starts interleave (each waits
        # for every other's stages), near half of it that they complete in turn.
        "connect_max_ms": round(max(r.connect_ms for r in results), 1),
        "first_audio_p50_ms": round(statistics.median(firsts), 1) if firsts else None,
        "cpu_us_per_msg": round(cpu[1] * 1e6 / messages, 1) if pid and messages else None,
        # Each session streams 10 audio chunks/s up and gets 10 back (and 1 JPEG/s up).
        "stream_cpu_us_per_msg": (
            round(steady[1] * 1e6 / (steady_wall * sessions * 20), 1) if pid else None
        ),
        "cpu_percent": round(cpu[1] * 100 / wall, 1) if pid else None,
        # Resident while all N stream, over the warmed idle server (`warm`), per session.
        "rss_kb_per_session": round((rss - target["rss_idle_kb"]) / sessions) if pid else None,
        "rss_idle_kb": target.get("rss_idle_kb"),
        "loop_lag_p99_ms": lag_p99_ms(metrics0, metrics1) if metrics1 else None,
        "tasks_per_session": (
            round(metrics1.get("pastra_asyncio_tasks", 0) / sessions, 1) if metrics1 else None
        ),
        "load_processes": procs,
        "driver_cpu_percent": round(driver * 100 / len(DRIVER_CPUS), 1),
        "driver_bound": driver / len(DRIVER_CPUS) > DRIVER_BOUND
        or sum(r.stalls for r in results) > 0,
        "sent": sent,
        "video_sent": sum(r.video_sent for r in results),
        "driver_stalls": sum(r.stalls for r in results),
        "lost": sent - received,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }
    return run


def add_ratios(runs: list[dict]) -> None:
    """Added latency over direct (same N), ratios to the bare and the Channels relay (same N
    and path)."""
    by = {(r["setup"], r["path"], r["sessions"]): r for r in runs}
    for r in runs:
        d = by.get(("direct", "gemini", r["sessions"]))
        if d and r["setup"] != "direct":
            r["added_p50_ms"] = round(r["p50_ms"] - d["p50_ms"], 2)
            r["added_p99_ms"] = round(r["p99_ms"] - d["p99_ms"], 2)
            if r.get("first_audio_p50_ms") and d.get("first_audio_p50_ms"):
                r["added_first_audio_ms"] = round(
                    r["first_audio_p50_ms"] - d["first_audio_p50_ms"], 1
                )
    for r in runs:
        key = (r["path"], r["sessions"])
        if r["setup"] in ("direct", "bare"):
            continue
        # Pastra under a server is compared with the Channels relay under the same server.
        server = r["setup"].partition("-")[2]
        b = by.get(("bare", *key))
        c = by.get((f"channels-{server}" if server else "channels", *key))
        if r["setup"].startswith("channels"):
            c = None
        for ref, name in ((b, "bare"), (c, "channels")):
            if ref is None or ref is r:
                continue
            if ref.get("stream_cpu_us_per_msg") and r.get("stream_cpu_us_per_msg"):
                r[f"stream_cpu_ratio_to_{name}"] = round(
                    r["stream_cpu_us_per_msg"] / ref["stream_cpu_us_per_msg"], 2
                )
            if ref.get("rss_kb_per_session") and r.get("rss_kb_per_session"):
                r[f"rss_ratio_to_{name}"] = round(
                    r["rss_kb_per_session"] / max(ref["rss_kb_per_session"], 1), 2
                )
        if b is not None:
            if "added_p99_ms" in b and "added_p99_ms" in r:
                r["added_p99_ratio_to_bare"] = round(
                    r["added_p99_ms"] / max(b["added_p99_ms"], 0.1), 2
                )
            # The whole round trip's p99 against the bare relay's: defined when the bare
            # relay's added p99 is within the noise of direct's (a few tenths of a ms).
            if b.get("p99_ms") and r.get("p99_ms"):
                r["p99_ratio_to_bare"] = round(r["p99_ms"] / b["p99_ms"], 2)
            if b.get("connect_p50_ms"):
                r["connect_ratio_to_bare"] = round(r["connect_p50_ms"] / b["connect_p50_ms"], 2)


COLUMNS = [
    "setup",
    "path",
    "sessions",
    "added_p50_ms",
    "added_p99_ms",
    "added_p99_ratio_to_bare",
    "p99_ratio_to_bare",
    "stream_cpu_us_per_msg",
    "stream_cpu_ratio_to_bare",
    "stream_cpu_ratio_to_channels",
    "rss_kb_per_session",
    "connect_p50_ms",
    "connect_ratio_to_bare",
    "connect_max_ms",
    "first_audio_p50_ms",
    "loop_lag_p99_ms",
    "driver_cpu_percent",
    "lost",
    "errors",
]


def print_table(runs: list[dict]) -> None:
    width = 10
    print(" | ".join(f"{c[:22]:>{width}}" for c in COLUMNS))
    for r in runs:
        print(" | ".join(f"{'' if r.get(c) is None else r.get(c)!s:>{width}}" for c in COLUMNS))


def capacity(runs: list[dict]) -> dict[str, int]:
    """The largest N (of those measured) with added p99 < 20 ms and nothing lost, per setup
    and path."""
    found: dict[str, int] = {}
    for r in runs:
        if r["setup"] == "direct":
            continue
        name = f"{r['setup']}/{r['path']}"
        ok = r["lost"] == 0 and r["errors"] == 0 and r.get("added_p99_ms", 1e9) < 20
        found[name] = max(found.get(name, 0), r["sessions"] if ok else 0)
    return found


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, under 2 minutes")
    parser.add_argument("--sessions", type=int, nargs="*", help="session counts to measure")
    parser.add_argument("--seconds", type=float, help="streaming seconds per measurement")
    parser.add_argument("--setups", nargs="*", default=["direct", "bare", "channels", "pastra"])
    parser.add_argument("--paths", nargs="*", choices=PATHS, default=list(PATHS))
    parser.add_argument(
        "--server",
        nargs="+",
        choices=["daphne", "uvicorn"],
        default=["daphne", "uvicorn"],
        help="ASGI server(s) for the channels and pastra setups (uvicorn: production's launcher)",
    )
    parser.add_argument(
        "--uvicorn-ws",
        choices=["websockets-sansio", "websockets", "wsproto"],
        default="websockets-sansio",
        help="uvicorn's WebSocket implementation (`websockets` is the legacy API)",
    )
    parser.add_argument(
        "--load-processes", type=int, help="load generator processes (default: one per 100 N)"
    )
    parser.add_argument(
        "--video-fps", type=float, default=VIDEO_FPS, help="JPEGs a second per session (0: none)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="py-spy each Pastra server into DIR"
    )
    args = parser.parse_args()
    counts = args.sessions or ([20] if args.quick else [50, 200, 400])
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    pin(0, 0)

    procs: list[subprocess.Popen] = []
    runs: list[dict] = []
    pastra: dict | None = None
    with tempfile.TemporaryDirectory(prefix="pastra-bench-") as tmpdir:
        try:
            emu, emu_url = start_emulator()
            procs.append(emu)
            # The emulator caches a reply's synthesized speech: one turn first, so that every
            # setup's end-of-turn → first audio measures the same (cached) reply.
            await run_load(Load(url=emu_url, key="bench", sessions=1, seconds=0.5))

            def serve(name: str, command: list[str], env: dict, port: int, **extra) -> None:
                proc = start(command, env, port, cpu=1)
                procs.append(proc)
                targets[name] = {
                    "url": f"ws://127.0.0.1:{port}", "pid": proc.pid, "port": port, **extra
                }  # fmt: skip

            targets: dict[str, dict] = {"direct": {"url": emu_url}}
            if "bare" in args.setups:
                port = free_port()
                command = [sys.executable, "-m", "bench.bare_relay", "--port", str(port),
                           "--upstream", emu_url]  # fmt: skip
                serve("bare", command, dict(os.environ), port)
            names = []
            for server in args.server:
                suffix = "" if server == "daphne" else f"-{server}"
                if "channels" in args.setups:
                    port = free_port()
                    app = "bench.channels_relay:application"
                    command = server_command(server, port, uvicorn_ws=args.uvicorn_ws, app=app)
                    relay_env = {**os.environ, "BENCH_UPSTREAM": emu_url}
                    relay_env.pop("DJANGO_SETTINGS_MODULE", None)
                    serve(f"channels{suffix}", command, relay_env, port)
                    names.append(f"channels{suffix}")
            if "pastra" in args.setups:
                env = pastra = pastra_env(Path(tmpdir), emu_url)
                # One user per session, as in a reconnect storm (one user's starts are serial:
                # its row lock keeps its quotas exact; docs/performance.md).
                token, cookie = prepare_pastra(env, users=max(counts))
                for server in args.server:
                    # All servers stay up on CPU 1; only the one under load uses it.
                    port = free_port()
                    command = server_command(server, port, uvicorn_ws=args.uvicorn_ws)
                    name = "pastra" if server == "daphne" else f"pastra-{server}"
                    serve(name, command, env, port, key=token, cookie=cookie, metrics=True)
                    names.append(name)

            for target in targets.values():
                if target.get("pid"):
                    for path in args.paths:
                        await warm(target, path, args.video_fps)
                    await asyncio.sleep(1.0)
                    target["rss_idle_kb"] = rss_kb(target["pid"])

            for n in counts:
                for path in args.paths:
                    for setup in ("direct", "bare", *names):
                        if setup not in targets or (setup == "direct" and path == "web"):
                            continue
                        k = load_processes(n, args.load_processes)
                        run = await measure(
                            setup, path, targets[setup], n, seconds, emu.pid, k, args.profile,
                            args.video_fps,
                        )  # fmt: skip
                        runs.append(run)
                        print(
                            f"  {setup:>14} {path:>6} N={n:<4} p50={run['p50_ms']} ms "
                            f"p99={run['p99_ms']} ms connect={run['connect_p50_ms']} ms "
                            f"lost={run['lost']} errors={run['errors']} {run['first_error']}",
                            flush=True,
                        )
                        await asyncio.sleep(1.0)
        finally:
            stop_all(procs)
            if pastra is not None:
                drop_database(pastra)

    add_ratios(runs)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "quick": args.quick,
        "servers": args.server,
        "uvicorn_ws": args.uvicorn_ws if "uvicorn" in args.server else None,
        "database": "postgresql" if os.environ.get("DATABASE_URL") else "sqlite",
        "channel_layer": "redis" if os.environ.get("REDIS_URL") else "in-memory",
        "seconds": seconds,
        "video_fps": args.video_fps,
        "max_sessions_added_p99_under_20ms": capacity(runs),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print_table(runs)
    print("\nlargest N with added p99 < 20 ms and nothing lost:", capacity(runs))
    bound = sorted({(r["setup"], r["path"], r["sessions"]) for r in runs if r["driver_bound"]})
    if bound:
        print("the driver's CPU was saturated (those figures measure it, not the server):", bound)
    print(f"written to {args.out}")
    if not args.no_plots:
        print(plots.draw(report, args.out.parent))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
