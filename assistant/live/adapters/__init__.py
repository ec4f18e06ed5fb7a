"""Client adapters, one per client protocol: plain classes (no Channels) that turn a client's
frames into session calls and the session's events into frames (web.py: the web UI's
protocol; gemini.py: the Gemini Live wire protocol). assistant/consumers.py glues each to a
socket."""
