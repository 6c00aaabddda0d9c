"""The mt stage (see the stages issue); not built yet."""
