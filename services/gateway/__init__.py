"""The FastAPI gateway: bridges HTTP clients to the job streams and back."""
