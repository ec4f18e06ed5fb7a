"""Prometheus metrics for this worker process (scrape every worker; labels stay low-cardinality).

Hot-path counters are pre-bound children (`AUDIO_IN`, …): one `inc()` is a lock and an add.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

LIVE_SESSIONS = Gauge(
    "pastra_live_sessions", "Open live sessions on this worker.", ["client"], registry=REGISTRY
)
MESSAGES = Counter(
    "pastra_messages_total",
    "Messages relayed, by direction (in = from clients, out = to clients) and kind.",
    ["direction", "kind"],
    registry=REGISTRY,
)
BYTES = Counter(
    "pastra_bytes_total", "Payload bytes relayed, by direction.", ["direction"], registry=REGISTRY
)
DROPPED = Counter(
    "pastra_dropped_total",
    "Messages dropped by a bounded buffer, by direction and kind.",
    ["direction", "kind"],
    registry=REGISTRY,
)
UPSTREAM_RECONNECTS = Counter(
    "pastra_upstream_reconnects_total",
    "Upstream reconnects, by reason (go_away, abnormal_close) and outcome.",
    ["reason", "outcome"],
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    "pastra_tool_calls_total",
    "Tool calls, by tool and outcome.",
    ["tool", "outcome"],
    registry=REGISTRY,
)
TOOL_SECONDS = Histogram(
    "pastra_tool_call_seconds",
    "Server tool call duration.",
    ["tool"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
    registry=REGISTRY,
)
FIRST_AUDIO_SECONDS = Histogram(
    "pastra_time_to_first_audio_seconds",
    "From the end of the user's turn to the first audio byte sent to the client.",
    buckets=(0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5),
    registry=REGISTRY,
)
CLOSES = Counter(
    "pastra_closes_total",
    "Client sockets closed, by path (web, sdk) and close code.",
    ["path", "code"],
    registry=REGISTRY,
)
LOOP_LAG = Histogram(
    "pastra_event_loop_lag_seconds",
    "How late the event loop ran a 50 ms timer (assistant/loopwatch.py): CPU saturation or a "
    "blocking call shows here first.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
TASKS = Gauge(
    "pastra_asyncio_tasks", "asyncio tasks on this worker's event loop.", registry=REGISTRY
)
ERRORS = Counter(
    "pastra_errors_total", "Errors, by where they happened.", ["where"], registry=REGISTRY
)

AUDIO_IN = MESSAGES.labels("in", "audio")
AUDIO_OUT = MESSAGES.labels("out", "audio")
VIDEO_IN = MESSAGES.labels("in", "video")
CONTROL_IN = MESSAGES.labels("in", "control")
CONTROL_OUT = MESSAGES.labels("out", "control")
BYTES_IN = BYTES.labels("in")
BYTES_OUT = BYTES.labels("out")
RECORDING_LOST = Counter(
    "pastra_recording_lost_events_total",
    "Conversation events that could not be written (database unavailable past the session's "
    "end, or a write that kept failing).",
    registry=REGISTRY,
)
RECORDED_TEXT_REPAIRED = Counter(
    "pastra_recorded_text_repaired_total",
    "Conversation events whose text or data held characters the database refuses (U+0000), "
    "stored with U+FFFD in their place.",
    registry=REGISTRY,
)
