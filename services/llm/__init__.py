"""LLM worker: a local SmolLM2 (llama.cpp via xllamacpp) or any OpenAI-compatible
server behind the consumer-group loop."""
