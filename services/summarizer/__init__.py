"""The summarizer stage (see the stages issue); not built yet."""
