"""Load generator: N Gemini-protocol clients, each streaming 100 ms PCM16 chunks in real time.

Every chunk carries its sequence number in its first bytes; the echo-mode emulator answers each
chunk at once with the same bytes, so each reply is matched to its chunk and timed.
"""

import asyncio
import base64
import struct
import time
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import connect

CHUNK_BYTES = 3200  # 100 ms of 16 kHz PCM16 mono
PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
SETUP = {
    "setup": {
        "model": "models/gemini-3.8-live",
        "generationConfig": {"responseModalities": ["AUDIO"]},
    }
}
AUDIO_MESSAGE = '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"%s"}}}'


@dataclass
class ClientResult:
    sent: int = 0
    received: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    connect_ms: float = 0.0
    error: str = ""


def chunk(session: int, seq: int) -> str:
    head = struct.pack("<II", session, seq)
    body = bytes((seq + i) & 0x7F for i in range(CHUNK_BYTES - len(head)))
    return base64.b64encode(head + body).decode()


async def one_client(
    url: str, key: str, session: int, seconds: float, start_at: float
) -> ClientResult:
    result = ClientResult()
    sent_at: dict[int, float] = {}
    t0 = time.perf_counter()
    try:
        async with connect(
            url + PATH,
            additional_headers={"x-goog-api-key": key},
            compression=None,
            max_size=16 * 2**20,
            ping_interval=None,
            open_timeout=30,
        ) as ws:
            await ws.send(orjson.dumps(SETUP).decode())
            while "setupComplete" not in orjson.loads(await ws.recv()):
                pass
            result.connect_ms = (time.perf_counter() - t0) * 1000

            async def receive():
                async for raw in ws:
                    msg = orjson.loads(raw)
                    parts = msg.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
                    for part in parts:
                        data = part.get("inlineData", {}).get("data")
                        if not data:
                            continue
                        sess, seq = struct.unpack("<II", base64.b64decode(data[:12])[:8])
                        if sess == session and seq in sent_at:
                            result.rtts_ms.append((time.perf_counter() - sent_at.pop(seq)) * 1000)
                            result.received += 1

            receiver = asyncio.create_task(receive())
            # Start every client on a shared clock, staggered across one 100 ms period.
            await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
            total = int(seconds * 10)
            begin = time.perf_counter()
            for seq in range(total):
                payload = AUDIO_MESSAGE % chunk(session, seq)
                sent_at[seq] = time.perf_counter()
                await ws.send(payload)
                result.sent += 1
                await asyncio.sleep(max(0.0, begin + (seq + 1) * 0.1 - time.perf_counter()))
            deadline = time.perf_counter() + 2.0
            while sent_at and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            receiver.cancel()
    except Exception as exc:  # a failed client is a measured outcome, not a crash
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    return result


async def run_clients(url: str, key: str, sessions: int, seconds: float) -> list[ClientResult]:
    start_at = time.perf_counter() + 1.0 + sessions * 0.01
    tasks = []
    for i in range(sessions):
        tasks.append(
            asyncio.create_task(one_client(url, key, i, seconds, start_at + (i % 10) * 0.01))
        )
        if i % 20 == 19:
            await asyncio.sleep(0.01)  # do not stampede the accept queue
    return await asyncio.gather(*tasks)
