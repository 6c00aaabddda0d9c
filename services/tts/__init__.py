"""The tts stage (see the stages issue); not built yet."""
