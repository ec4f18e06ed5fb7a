"""The live bridge: one core (session.py) between client adapters and one upstream Gemini Live
session per client socket (see docs/browser-protocol.md and docs/bridge-notes.md)."""
