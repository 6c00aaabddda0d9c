"""Text-to-speech worker: Piper, espeak-ng or Coqui voices behind the consumer-group loop."""
