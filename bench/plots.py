"""The bench's PNG plots: added p99 and streaming CPU per message against sessions, one line per
setup, one panel per path (drawn from a `make bench` report)."""

from __future__ import annotations

from pathlib import Path

FIGURES = (
    ("added_p99_ms", "added p99 over direct (ms)", "added_p99.png"),
    ("stream_cpu_us_per_msg", "server CPU per message (µs)", "cpu_per_msg.png"),
    ("rss_kb_per_session", "resident memory per session (KB)", "rss_per_session.png"),
)


def draw(report: dict, out: Path) -> str:
    """Write the plots into `out`; returns a line saying what was written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plots skipped: matplotlib is not installed (a dev requirement)"
    runs = [r for r in report["runs"] if r["setup"] != "direct"]
    paths = sorted({r["path"] for r in runs})
    if not runs:
        return "plots skipped: nothing measured"
    written = []
    for key, label, name in FIGURES:
        fig, axes = plt.subplots(1, len(paths), figsize=(5.5 * len(paths), 4), squeeze=False)
        for ax, path in zip(axes[0], paths, strict=True):
            for setup in sorted({r["setup"] for r in runs if r["path"] == path}):
                points = sorted(
                    (r["sessions"], r[key])
                    for r in runs
                    if r["setup"] == setup and r["path"] == path and r.get(key) is not None
                )
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker="o", label=setup)
            ax.set_title(f"{path} path")
            ax.set_xlabel("concurrent sessions")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        title = f"{report['date'][:10]} · {report['machine']} · {report['command']}"
        fig.suptitle(title, fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(str(out / name))
    return "plots: " + ", ".join(written)
