"""Live sessions: streaming STT over a WebSocket, SSE listeners, session history in Redis."""
