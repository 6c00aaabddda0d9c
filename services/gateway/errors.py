"""The one error body every gateway error response carries."""


def error_body(status: int, message: str, code: str) -> dict[str, object]:
    """One error shape: FastAPI's ``detail`` plus OpenAI's ``error`` object."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"detail": message, "error": {"message": message, "type": kind, "code": code}}
