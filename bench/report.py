"""A `make bench` report as the Markdown tables of docs/performance.md.

python -m bench.report [bench/results/latest.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.procs import ROOT

COLUMNS = (
    ("setup", "setup"),
    ("sessions", "N"),
    ("added_p50_ms", "added p50 (ms)"),
    ("added_p99_ms", "added p99 (ms)"),
    ("added_p99_ratio_to_bare", "÷ bare"),
    ("p99_ms", "round trip p99 (ms)"),
    ("p99_ratio_to_bare", "÷ bare"),
    ("stream_cpu_us_per_msg", "CPU/msg (µs)"),
    ("stream_cpu_ratio_to_bare", "÷ bare"),
    ("stream_cpu_ratio_to_channels", "÷ channels"),
    ("rss_kb_per_session", "RSS/session (KB)"),
    ("connect_p50_ms", "connect p50 (ms)"),
    ("connect_ratio_to_bare", "÷ bare"),
    ("connect_max_ms", "connect max (ms)"),
    ("first_audio_p50_ms", "first audio p50 (ms)"),
    ("loop_lag_p99_ms", "loop lag p99 ≤ (ms)"),
    ("driver_cpu_percent", "driver CPU %"),
    ("lost", "lost"),
)


def cell(run: dict, key: str) -> str:
    value = run.get(key)
    if value is None:
        return ""
    if key == "setup" and run.get("driver_bound"):
        return f"{value} (driver-bound)"
    return str(value)


def tables(report: dict) -> str:
    out = []
    for path in ("gemini", "web"):
        runs = [r for r in report["runs"] if r["path"] == path]
        if not runs:
            continue
        out.append(f"**{path} path**\n")
        out.append("| " + " | ".join(title for _, title in COLUMNS) + " |")
        out.append("|" + "---|" * len(COLUMNS))
        for run in runs:
            out.append("| " + " | ".join(cell(run, key) for key, _ in COLUMNS) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    name = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench/results/latest.json"
    data = json.loads(name.read_text())
    from bench.__main__ import add_ratios

    add_ratios(data["runs"])  # ratios added since the report was written, from its figures
    print(
        f"{data['date']} · {data['machine']} · `{data['command']}` · {data['database']} · "
        f"{data['channel_layer']} layer · {data['seconds']} s per measurement\n"
    )
    print(tables(data))
