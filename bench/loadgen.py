"""Load generator: N live clients streaming 100 ms PCM16 chunks in real time (plus one JPEG a
second), on either path, optionally spread over several processes.

Paths: `gemini` speaks the Gemini Live protocol (base64 JSON, an access token); `web` speaks
Pastra's browser protocol (`/ws/live/`: binary PCM frames, `video` JSON, a session cookie).
Every chunk carries its session and sequence number in its first 9 bytes; the echo-mode
emulator answers each chunk at once with the same bytes, so each reply is matched to its chunk
and timed. Halfway through the stream, up to `PROBE_SESSIONS` clients each send one typed turn
and time the first audio byte of the (scripted) reply that is not an echo: the end of a user
turn to first audio, while every session streams.

`python -m bench.loadgen` is a worker: a JSON `Load` on stdin, its clients' results as JSON on
stdout (`run_load` starts these when asked for more than one process).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import connect

CHUNK_BYTES = 3200  # 100 ms of 16 kHz PCM16 mono
HEAD = struct.Struct("<IIx")  # session, sequence, pad: 9 bytes = 12 base64 characters
GEMINI_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
WEB_PATH = "/ws/live/"
SETUP = {
    "setup": {
        "model": "models/gemini-3.8-live",
        "generationConfig": {"responseModalities": ["AUDIO"]},
    }
}
AUDIO_MESSAGE = '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"%s"}}}'
VIDEO_MESSAGE = '{"realtimeInput":{"video":{"mimeType":"image/jpeg","data":"%s"}}}'
WEB_VIDEO_MESSAGE = '{"type":"video","source":"camera","mime":"image/jpeg","data":"%s"}'
PROBE_SESSIONS = 20
STALL_SECONDS = 0.5  # a client this far behind its clock skips ahead (counted as a stall)
PROBE_TEXT = "Hello, how are you?"


def _bodies() -> list[bytes]:
    """16 distinct chunk bodies (a chunk's bytes after its head), made once."""
    size = CHUNK_BYTES - HEAD.size
    return [bytes((k * 7 + i) & 0x7F for i in range(size)) for k in range(16)]


BODIES = _bodies()
BODIES_B64 = [base64.b64encode(b).decode() for b in BODIES]  # HEAD.size % 3 == 0: b64 concat


def jpeg(size: int = 30_000) -> bytes:
    """A JPEG-framed payload the size of a 768 px camera frame (nothing decodes it here)."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    body = bytes((i * 31) & 0xFF for i in range(size - len(head) - 2)).replace(b"\xff", b"\x00")
    return head + body + b"\xff\xd9"


JPEG_B64 = base64.b64encode(jpeg()).decode()


@dataclass
class Load:
    url: str  # ws://host:port (no path)
    path: str = "gemini"  # or "web"
    key: str = ""  # gemini: the access token (or one per user, "|"-separated)
    cookie: str = ""  # web: "sessionid=…" (or one per user, "|"-separated)
    origin: str = ""  # web: the page's origin
    sessions: int = 10
    seconds: float = 5.0
    video_fps: float = 1.0
    start_at: float = 0.0  # time.time() when streaming starts (shared by all workers)
    first: int = 0  # this worker's session numbers: first, first + step, …
    step: int = 1
    until: float = 0.0  # soak: each client reconnects after `seconds` until this time.time()


@dataclass
class ClientResult:
    sent: int = 0
    received: int = 0
    video_sent: int = 0
    stalls: int = 0  # times the client fell STALL_SECONDS behind (the driver, not the relay)
    rtts_ms: list[float] = field(default_factory=list)
    connect_ms: float = 0.0
    first_audio_ms: float | None = None
    error: str = ""


def _head(raw: str | bytes, path: str) -> tuple[int, int] | None:
    """(session, sequence) of an echoed chunk, or None for anything else."""
    if path == "web":
        if not isinstance(raw, bytes) or len(raw) < HEAD.size:
            return None
        return HEAD.unpack_from(raw)
    msg = orjson.loads(raw)
    parts = msg.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    for part in parts:
        data = part.get("inlineData", {}).get("data")
        if data:
            return HEAD.unpack_from(base64.b64decode(data[:12]))
    return None


def _is_audio(raw: str | bytes, path: str) -> bool:
    if path == "web":
        return isinstance(raw, bytes)
    return b'"inlineData"' in (raw if isinstance(raw, bytes) else raw.encode())


def _credential(value: str, session: int) -> str:
    """Session i's credential: the i-th of several users' (a burst of many users, as a
    reconnect storm is), or the one given."""
    values = value.split("|")
    return values[session % len(values)]


async def _open(load: Load, session: int):
    if load.path == "web":
        headers = {"Cookie": _credential(load.cookie, session), "Origin": load.origin}
        url = load.url + WEB_PATH
    else:
        headers = {"x-goog-api-key": _credential(load.key, session)}
        url = load.url + GEMINI_PATH
    return await connect(
        url,
        additional_headers=headers,
        compression=None,
        max_size=16 * 2**20,
        ping_interval=None,
        open_timeout=60,
    )


async def _ready(ws, load: Load) -> None:
    """Send the opening message and wait until the session listens."""
    if load.path == "web":
        await ws.send('{"type":"start"}')
        while True:
            raw = await ws.recv()
            if isinstance(raw, str):
                msg = orjson.loads(raw)
                if msg.get("type") == "session" and msg.get("state") == "ready":
                    return
                if msg.get("type") == "error":
                    raise RuntimeError(f"refused: {msg.get('code')} {msg.get('message')}")
    await ws.send(orjson.dumps(SETUP).decode())
    while "setupComplete" not in orjson.loads(await ws.recv()):
        pass


def _probe_message(web: bool) -> str:
    if web:
        return json.dumps({"type": "text", "text": PROBE_TEXT})
    return json.dumps({"realtimeInput": {"text": PROBE_TEXT}})


async def one_client(load: Load, session: int, start_at: float, probe: bool) -> ClientResult:
    result = ClientResult()
    sent_at: dict[int, float] = {}
    web = load.path == "web"
    probe_sent: list[float] = []
    t0 = time.perf_counter()
    try:
        async with await _open(load, session) as ws:
            await _ready(ws, load)
            result.connect_ms = (time.perf_counter() - t0) * 1000

            async def receive():
                async for raw in ws:
                    head = _head(raw, load.path)
                    if head is not None and head[0] == session and head[1] in sent_at:
                        result.rtts_ms.append((time.perf_counter() - sent_at.pop(head[1])) * 1000)
                        result.received += 1
                    elif probe_sent and result.first_audio_ms is None and _is_audio(raw, load.path):
                        # Not an echo: the first audio of the reply to the probe's typed turn.
                        result.first_audio_ms = (time.perf_counter() - probe_sent[0]) * 1000

            receiver = asyncio.create_task(receive())
            # Every client starts on a shared clock, staggered across one 100 ms period.
            await asyncio.sleep(max(0.0, start_at - time.time()))
            total = int(load.seconds * 10)
            video_every = round(10 / load.video_fps) if load.video_fps > 0 else 0
            begin = time.perf_counter()
            for seq in range(total):
                head = HEAD.pack(session, seq)
                if web:
                    payload: str | bytes = head + BODIES[seq & 15]
                else:
                    data = base64.b64encode(head).decode() + BODIES_B64[seq & 15]
                    payload = AUDIO_MESSAGE % data
                sent_at[seq] = time.perf_counter()
                await ws.send(payload)
                result.sent += 1
                if probe and seq == total // 2:  # mid-stream, while every session streams
                    probe_sent.append(time.perf_counter())
                    await ws.send(_probe_message(web))
                if video_every and seq % video_every == session % video_every:
                    await ws.send((WEB_VIDEO_MESSAGE if web else VIDEO_MESSAGE) % JPEG_B64)
                    result.video_sent += 1
                behind = time.perf_counter() - (begin + (seq + 1) * 0.1)
                if behind > STALL_SECONDS:  # this process stalled: go on, never burst to catch up
                    begin += behind
                    result.stalls += 1
                await asyncio.sleep(max(0.0, begin + (seq + 1) * 0.1 - time.perf_counter()))
            deadline = time.perf_counter() + 2.0
            while (sent_at or (probe_sent and result.first_audio_ms is None)) and (
                time.perf_counter() < deadline
            ):
                await asyncio.sleep(0.05)
            receiver.cancel()
    except Exception as exc:  # a failed client is a measured outcome, not a crash
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    return result


async def soak_client(load: Load, session: int, start_at: float) -> ClientResult:
    """One client that streams `seconds`, closes and connects again until `until`: counts
    only (a 30-minute soak keeps no per-chunk timings). Its first session is shorter (a share
    of `seconds` by its number), so that all stream from the start and the churn is steady."""
    total = ClientResult()
    first = load.seconds * ((session * 7919) % max(1, load.sessions) + 1) / max(1, load.sessions)
    while time.time() < load.until:
        seconds = min(first or load.seconds, load.until - time.time())
        first = 0.0
        one = await one_client(dataclasses.replace(load, seconds=seconds), session, start_at, False)
        total.sent += one.sent
        total.received += one.received
        total.video_sent += one.video_sent
        total.stalls += one.stalls
        if one.error:
            total.error = total.error or one.error
            await asyncio.sleep(1.0)
        start_at = time.time()
    return total


async def run_worker(load: Load) -> list[ClientResult]:
    """This process's share of the clients (session numbers first, first + step, …)."""
    tasks = []
    numbers = range(load.first, load.sessions, load.step)
    for k, i in enumerate(numbers):
        start_at = load.start_at + (i % 10) * 0.01
        if load.until:
            tasks.append(asyncio.create_task(soak_client(load, i, start_at)))
            continue
        tasks.append(asyncio.create_task(one_client(load, i, start_at, i < PROBE_SESSIONS)))
        if k % 20 == 19:
            await asyncio.sleep(0.01)  # do not stampede the accept queue
    return await asyncio.gather(*tasks)


async def run_load(load: Load, processes: int = 1, cpus: set[int] | None = None):
    """All the clients of a load, in this process or in `processes` worker processes (pinned
    to `cpus`). Returns (results, the workers' CPU seconds)."""
    load = dataclasses.replace(load, start_at=time.time() + 1.0 + load.sessions * 0.01)
    if processes <= 1:
        cpu0 = time.process_time()
        results = await run_worker(load)
        return results, time.process_time() - cpu0
    workers = []
    for w in range(processes):
        part = dataclasses.replace(load, first=w, step=processes)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        if cpus and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(proc.pid, cpus)
        workers.append((proc, json.dumps(dataclasses.asdict(part)).encode()))
    outputs = await asyncio.gather(*(proc.communicate(data) for proc, data in workers))
    results, cpu = [], 0.0
    for out, _ in outputs:
        report = json.loads(out)
        cpu += report["cpu_seconds"]
        results += [ClientResult(**r) for r in report["results"]]
    return results, cpu


def _worker_main() -> None:
    load = Load(**json.loads(sys.stdin.read()))
    cpu0 = time.process_time()
    results = asyncio.run(run_worker(load))
    report = {
        "cpu_seconds": time.process_time() - cpu0,
        "results": [dataclasses.asdict(r) for r in results],
    }
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    _worker_main()
