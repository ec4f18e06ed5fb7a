"""The Gemini Live wire protocol as the bridge reads it (docs/gemini-live-protocol.md): close
reasons (errors), JSON/camelCase/base64 helpers (wire), client messages (client), the setup
policy (setup), server messages (server) and the model capability table (models)."""
