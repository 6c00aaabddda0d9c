"""Speaker worker: GE2E speaker embeddings (onnxruntime) and diarization of audio."""
