"""The reference relays' web path: the least translation between Pastra's browser protocol
(binary PCM, `video` JSON, `start`) and Gemini's, so that `bare` and `channels` carry the
same web load as Pastra's `/ws/live/` with nothing else (no auth, no policy, no recording).
"""

import base64

import orjson

WEB_PATH = "/ws/live/"
GEMINI_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
SETUP = orjson.dumps(
    {
        "setup": {
            "model": "models/gemini-3.8-live",
            "generationConfig": {"responseModalities": ["AUDIO"]},
        }
    }
).decode()
READY = '{"type":"session","state":"ready"}'
AUDIO = '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"%s"}}}'
VIDEO = '{"realtimeInput":{"video":{"mimeType":"%s","data":"%s"}}}'
TEXT = '{"realtimeInput":{"text":%s}}'


def upstream_path(path: str) -> str:
    return GEMINI_PATH if path.startswith(WEB_PATH) else path


def to_upstream(message: str | bytes) -> str | None:
    """A browser frame as the Gemini message it stands for (None: nothing to send)."""
    if isinstance(message, bytes):
        return AUDIO % base64.b64encode(message).decode()
    msg = orjson.loads(message)
    kind = msg.get("type")
    if kind == "video":
        return VIDEO % (msg.get("mime", "image/jpeg"), msg["data"])
    if kind == "text":
        return TEXT % orjson.dumps(msg["text"]).decode()
    return None


def to_client(message: str | bytes) -> bytes | None:
    """Model audio of an upstream message as one binary frame (None: not audio)."""
    msg = orjson.loads(message)
    parts = msg.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    audio = [p["inlineData"]["data"] for p in parts if "inlineData" in p]
    return b"".join(base64.b64decode(a) for a in audio) if audio else None
