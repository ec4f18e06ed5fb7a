"""Server CPU per session for connect, setup and close, one session at a time (no burst
queueing): production's launcher, the echo emulator, PostgreSQL and Redis when their URLs are
set. `python -m bench.connect_cpu [--sessions N] [--profile DIR]` prints ms of server CPU per
session, per path (`--profile`: py-spy `--gil` over the measured sessions, into
DIR/connect-<path>.txt, its top printed)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench import profile
from bench.loadgen import Load, _open, _ready
from bench.procs import cpu_seconds, free_port, start, start_emulator, stop_all
from bench.servers import drop_database, pastra_env, prepare_pastra, server_command


async def one_session(url: str, path: str, key: str, cookie: str) -> None:
    """Open a session the way the load generator does, wait until it is ready, close it."""
    load = Load(url=url, path=path, key=key, cookie=cookie, origin=url.replace("ws://", "http://"))
    ws = await _open(load, 0)
    await _ready(ws, load)
    await ws.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=150)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the server into DIR")
    args = parser.parse_args()
    procs = []
    with tempfile.TemporaryDirectory(prefix="pastra-connect-") as tmp:
        emulator, upstream = start_emulator()
        procs.append(emulator)
        env = pastra_env(Path(tmp), upstream)
        try:
            key, cookie = prepare_pastra(env, users=1)
            port = free_port()
            server = start(server_command("uvicorn", port), env, port, cpu=1)
            procs.append(server)
            url = f"ws://127.0.0.1:{port}"
            for path in ("gemini", "web"):
                for _ in range(10):  # first-use costs out of the figure
                    await one_session(url, path, key, cookie)
                await asyncio.sleep(0.5)
                cpu, wall = cpu_seconds(server.pid), time.perf_counter()
                spy, stop = None, asyncio.Event()
                if args.profile is not None:
                    out = args.profile / f"connect-{path}.txt"
                    record = profile.record(server.pid, 3600, out, gil=True, stop=stop)
                    spy = asyncio.create_task(record)
                    await asyncio.sleep(1.0)  # py-spy attached
                for _ in range(args.sessions):
                    await one_session(url, path, key, cookie)
                await asyncio.sleep(0.5)  # the last close's writes
                cpu, wall = cpu_seconds(server.pid) - cpu, time.perf_counter() - wall
                print(
                    f"{path}: {cpu / args.sessions * 1000:.1f} ms of server CPU per session, "
                    f"{wall / args.sessions * 1000:.1f} ms wall (N={args.sessions}, one at a time)"
                )
                if spy is not None:
                    stop.set()
                    if recorded := await spy:
                        print(profile.top(recorded, rows=20), flush=True)
        finally:
            stop_all(procs)
            drop_database(env)


if __name__ == "__main__":
    asyncio.run(main())
