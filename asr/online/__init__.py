"""Streaming recognition: online features, chunked network forward with carried state,
incremental search, endpointing, and the Vosk-protocol WebSocket server (docs/streaming.md)."""
