"""Summarizer worker: extractive (offline, numpy) or abstractive through an OpenAI-compatible
LLM server, behind the consumer-group loop."""
