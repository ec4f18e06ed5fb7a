"""A stand-alone, deterministic Gemini Live API (BidiGenerateContent) emulator.

Imports only the standard library, `websockets` and (optionally) `orjson`; never Django or
`assistant`, so the bridge and the emulator stay two independent readings of the protocol.
"""

from .config import EmulatorConfig
from .models import MODELS, ModelSpec
from .server import EmulatorServer, EmulatorThread

__all__ = ["MODELS", "EmulatorConfig", "EmulatorServer", "EmulatorThread", "ModelSpec"]
