"""Can the echo-mode emulator carry N sessions streaming 10 audio chunks/s on one core?

Runs `python -m gemini_emulator` in echo mode pinned to CPU 0 (`taskset -c 0`), drives it
from this process pinned to CPU 1 with N clients each sending a 100 ms 16 kHz PCM16 chunk
every 100 ms, and prints p50/p99 round trip per chunk, the emulator's CPU % (from
/proc/PID/stat, over the busiest `--seconds` window), its CPU per chunk, and whether it kept
up (nothing lost, every chunk sent on time, p99 under 20 ms, CPU under 80 % of its core).

    .venv/bin/python -m bench.emulator_capacity --sessions 500 --seconds 10

The default client is a lean one (one asyncio Protocol per connection, a single ticker,
pre-encoded frames) because bench/loadgen.py, built for up to a few hundred sessions,
saturates its own core before 500 sessions and would then measure itself, not the
emulator. `--client loadgen` runs that one instead, for comparison.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

from bench.__main__ import pct
from bench.loadgen import GEMINI_PATH as PATH
from bench.loadgen import SETUP, Load, run_load
from bench.procs import ROOT, cpu_seconds, free_port, pin, rss_kb, wait_for_port

MAX_CPU_PERCENT = 80.0
MAX_P99_MS = 20.0
CHUNK_BYTES = 3200  # 100 ms of 16 kHz PCM16 mono
PERIOD = 0.1
SLOTS = 100  # sessions are spread evenly over 1 ms slots of each period
_BODY = base64.b64encode(bytes(i * 7 & 0x7F for i in range(CHUNK_BYTES - 12))).decode()
_AUDIO_HEAD = b'{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"'
_AUDIO_TAIL = b'"}}}'
_DATA_KEY = b'"data":"'


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame with the all-zero masking key (valid, and the payload stays as is)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + b"\0\0\0\0" + payload


class EchoClient(asyncio.Protocol):
    """One emulator session: handshake, setup, then timed audio chunks and their echoes."""

    def __init__(self, session: int, port: int, rtts: list[float]) -> None:
        self.session = session
        self.port = port
        self.rtts = rtts
        self.sent_at: dict[int, float] = {}
        self.sent = 0
        self.received = 0
        self.buffer = bytearray()
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "x-goog-api-key: bench\r\n\r\n"
        )
        transport.write(request.encode())

    def send_chunk(self, seq: int) -> None:
        head = base64.b64encode(struct.pack("<III", self.session, seq, 0))
        self.sent_at[seq] = time.perf_counter()
        self.transport.write(client_frame(_AUDIO_HEAD + head + _BODY.encode() + _AUDIO_TAIL))
        self.sent += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[:end]:
                self.fail(f"upgrade refused: {bytes(self.buffer[:40])!r}")
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.transport.write(client_frame(json.dumps(SETUP).encode()))
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            size, offset = second & 0x7F, 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                (size,) = struct.unpack_from("!H", self.buffer, 2)
                offset = 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                (size,) = struct.unpack_from("!Q", self.buffer, 2)
                offset = 10
            if len(self.buffer) < offset + size:
                return
            payload = bytes(self.buffer[offset : offset + size])
            del self.buffer[: offset + size]
            self.on_frame(first & 0x0F, payload)

    def on_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x9:  # ping
            self.transport.write(client_frame(payload, 0xA))
        elif opcode == 0x8:
            self.fail(f"closed by the server: {payload[2:]!r}")
        elif opcode in (0x1, 0x2):
            if not self.ready.done():
                if b"setupComplete" in payload:
                    self.ready.set_result(None)
                return
            start = payload.find(_DATA_KEY) + len(_DATA_KEY)
            session, seq, _ = struct.unpack("<III", base64.b64decode(payload[start : start + 16]))
            sent = self.sent_at.pop(seq, None)
            if session == self.session and sent is not None:
                self.rtts.append((time.perf_counter() - sent) * 1000)
                self.received += 1

    def fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))
        if self.transport:
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"connection lost: {exc}"))


async def lean_clients(port: int, sessions: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    rtts: list[float] = []
    clients: list[EchoClient] = []
    for index in range(sessions):
        _, client = await loop.create_connection(
            lambda index=index: EchoClient(index, port, rtts), "127.0.0.1", port
        )
        clients.append(client)
        if index % 50 == 49:
            await asyncio.gather(*(c.ready for c in clients[-50:]))
    await asyncio.gather(*(c.ready for c in clients))
    ticks = int(seconds / PERIOD) * SLOTS
    late = 0
    begin = time.perf_counter() + 0.2
    for tick in range(ticks):
        due = begin + tick * PERIOD / SLOTS
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -PERIOD / 2:
            late += 1
        seq, slot = divmod(tick, SLOTS)
        for client in clients[slot::SLOTS]:
            client.send_chunk(seq)
    deadline = time.perf_counter() + 2.0
    while time.perf_counter() < deadline and any(c.sent_at for c in clients):
        await asyncio.sleep(0.05)
    for client in clients:
        client.transport.close()
    sent = sum(c.sent for c in clients)
    return {
        "rtts": rtts,
        "sent": sent,
        "received": sum(c.received for c in clients),
        "errors": [],
        "late_ticks": late,
    }


async def loadgen_clients(port: int, sessions: int, seconds: float) -> dict:
    load = Load(url=f"ws://127.0.0.1:{port}", key="bench", sessions=sessions, seconds=seconds)
    results, _ = await run_load(load)
    return {
        "rtts": [rtt for result in results for rtt in result.rtts_ms],
        "sent": sum(result.sent for result in results),
        "received": sum(result.received for result in results),
        "errors": [result.error for result in results if result.error],
        "late_ticks": None,
    }


def start_emulator(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "EMULATOR_MODE": "echo",
        "EMULATOR_MAX_SESSIONS": "0",
        "EMULATOR_CONNECTION_SECONDS": "3600",
        "EMULATOR_API_KEY": "",
    }
    cmd = [sys.executable, "-m", "gemini_emulator", "--host", "127.0.0.1", "--port", str(port)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port, proc)
    return proc


async def sample_cpu(pid: int, samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append((time.monotonic(), cpu_seconds(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    samples.append((time.monotonic(), cpu_seconds(pid)))


def busiest_window(samples: list[tuple[float, float]], seconds: float) -> tuple[float, float]:
    """(CPU %, CPU seconds) over the busiest window of about `seconds`: the streaming phase."""
    best = (0.0, 0.0)
    for index, (t0, c0) in enumerate(samples):
        for t1, c1 in samples[index + 1 :]:
            if t1 - t0 >= seconds:
                best = max(best, ((c1 - c0) / (t1 - t0) * 100, c1 - c0))
                break
    return best


async def measure(sessions: int, seconds: float, client: str) -> dict:
    port = free_port()
    proc = start_emulator(port)
    if (os.cpu_count() or 1) > 1:
        pin(0, 1)  # the load generator stays off the emulator's core
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    try:
        rss0 = rss_kb(proc.pid)
        sampler = asyncio.create_task(sample_cpu(proc.pid, samples, stop))
        load_cpu0, wall0 = time.process_time(), time.monotonic()
        drive = lean_clients if client == "lean" else loadgen_clients
        outcome = await drive(port, sessions, seconds)
        load_cpu, wall = time.process_time() - load_cpu0, time.monotonic() - wall0
        rss = rss_kb(proc.pid)
        stop.set()
        await sampler
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    rtts, sent, received = outcome["rtts"], outcome["sent"], outcome["received"]
    cpu_percent, window_cpu = busiest_window(samples, seconds)
    report = {
        "client": client,
        "sessions": sessions,
        "seconds": seconds,
        "chunks_per_second": sessions * round(1 / PERIOD),
        "sent": sent,
        "lost": sent - received,
        "errors": len(outcome["errors"]),
        "late_ticks": outcome["late_ticks"],
        "p50_ms": round(pct(rtts, 0.50), 2),
        "p99_ms": round(pct(rtts, 0.99), 2),
        "max_ms": round(max(rtts), 2) if rtts else None,
        "emulator_cpu_percent": round(cpu_percent, 1),
        "emulator_cpu_us_per_chunk": round(window_cpu * 1e6 / (sessions * seconds / PERIOD), 1),
        "emulator_rss_kb_per_session": round((rss - rss0) / sessions, 1),
        "loadgen_cpu_percent": round(load_cpu / wall * 100, 1),
    }
    report["kept_up"] = (
        report["lost"] == 0
        and report["errors"] == 0
        and not report["late_ticks"]
        and sent >= sessions * int(seconds / PERIOD)
        and cpu_percent < MAX_CPU_PERCENT
        and report["p99_ms"] < MAX_P99_MS
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client", choices=["lean", "loadgen"], default="lean")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    report = asyncio.run(measure(args.sessions, args.seconds, args.client))
    for key, value in report.items():
        print(f"{key:>28}: {value}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["kept_up"] else 1


if __name__ == "__main__":
    sys.exit(main())
