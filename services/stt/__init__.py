"""Speech-to-text worker: faster-whisper behind the consumer-group loop."""
