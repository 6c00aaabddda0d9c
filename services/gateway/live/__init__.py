"""Live sessions: streaming STT over a WebSocket or WebRTC, SSE listeners, session history in
Redis. ``routes/`` parse and render (``/ws/converse``, ``/offer``, ``/events``,
``/v1/sessions``); ``engine/`` does the work; ``vad`` wraps the voice-activity model both use.
"""
