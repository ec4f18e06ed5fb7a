"""The bench's profiler: py-spy attached to a server under load, and the top of its profile
(self and inclusive share of the samples, by function) as a Markdown table.

`python -m bench --profile DIR` records one collapsed-stack file per Pastra measurement
(`DIR/<setup>-<path>-<N>.txt`, viewable with speedscope or flamegraph.pl) and prints its top.
`python -m bench.profile FILE…` prints the top of files recorded earlier.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path


async def record(
    pid: int, seconds: float, out: Path, *, gil: bool = False, stop: asyncio.Event | None = None
) -> Path | None:
    """Sample `pid` for `seconds` (or until `stop` is set) into a collapsed-stack file; None
    when py-spy is missing. `gil`: only the thread holding the GIL (where the CPU goes)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
        "--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking",
        *(["--gil"] if gil else []),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    if stop is not None:
        done = asyncio.ensure_future(proc.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({done, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not done.done():
            proc.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
    await proc.wait()
    return out if out.exists() else None


def _frame(frame: str) -> str:
    """`function (path/to/file.py:line)` → `function (file.py)`: one row per function."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    parts = Path(file).parts
    for root in ("site-packages", "assistant", "bench", "pastra_site", "asyncio"):
        if root in parts:
            file = "/".join(parts[parts.index(root) + (root == "site-packages") :])
            break
    else:
        file = Path(file).name
    return f"{name} ({file})"


def top(path: Path, rows: int = 15) -> str:
    """The functions with the most samples, by self and by inclusive time."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} samples", "", "| self % | function | | incl. % | function |"]
    lines.append("|---|---|---|---|---|")
    # Frames in (nearly) every sample are the event loop's own: leave them out.
    inner = [(f, n) for f, n in inclusive.most_common() if n < 0.9 * total][:rows]
    for (fs, ns), (fi, ni) in zip(own.most_common(rows), inner, strict=False):
        lines.append(f"| {ns * 100 / total:.1f} | `{fs}` | | {ni * 100 / total:.1f} | `{fi}` |")
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(top(Path(name)))
        print()
