"""One client per pipeline stage: what job a request becomes, which worker's stream it goes
to, and what its reply means. ``workers`` is how every stage picks a worker.

- ``stt``: transcription and speech translation (Whisper)
- ``mt``: text translation by language pair
- ``tts``: speech synthesis, streamed in chunks
- ``llm``: the LLM's replies and a conversation's memory
- ``summarizer``: summaries of a text or of a live session's transcript
"""
