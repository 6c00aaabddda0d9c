"""Text-to-speech worker: a Piper voice behind the consumer-group loop."""
