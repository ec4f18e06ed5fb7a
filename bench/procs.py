"""Process helpers shared by the benchmarks: ports, CPU pinning, /proc CPU time and RSS,
the emulator, starting and stopping servers."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pin(pid: int, cpu: int) -> None:
    """Keep a process on one CPU (no-op on one-CPU machines)."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {seconds} s")


def start(cmd: list[str], env: dict, port: int, cpu: int) -> subprocess.Popen:
    """Start a server quietly (its output to `$BENCH_LOG_DIR/<port>.log` when that is set),
    wait until it listens, pin it to `cpu`."""
    log_dir = os.environ.get("BENCH_LOG_DIR")
    out = open(Path(log_dir) / f"{port}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if log_dir:
        out.close()  # the child holds its own copy
    wait_for_port(port, proc)
    pin(proc.pid, cpu)
    return proc


def start_emulator(connection_seconds: float = 3600.0) -> tuple[subprocess.Popen, str]:
    """The echo-mode emulator every bench run talks to, on CPU 0 (shared with the load
    generator): the process and its ws:// URL."""
    port = free_port()
    env = {
        **os.environ,
        "EMULATOR_MODE": "echo",
        "EMULATOR_TTS": "synthetic",
        "EMULATOR_MAX_SESSIONS": "100000",
        "EMULATOR_CONNECTION_SECONDS": str(connection_seconds),
        "EMULATOR_API_KEY": "",
    }
    command = [sys.executable, "-m", "gemini_emulator", "--port", str(port)]
    return start(command, env, port, cpu=0), f"ws://127.0.0.1:{port}"


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Terminate the servers a run started, then kill any that do not exit within 10 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
