"""Running the real ``pyparrot`` command, and a small external backend on loopback."""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def pyparrot(
    *args: str, env: dict[str, str], timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyparrot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def cli_env(home: Path, redis_url: str) -> dict[str, str]:
    return {**os.environ, "PYPARROT_HOME": str(home), "REDIS_URL": redis_url, "COLUMNS": "200"}


class _AsrServer(BaseHTTPRequestHandler):
    """The outer edge: an external ASR server answering the documented contract."""

    calls: list[int] = []

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, {"status": "ok"} if self.path == "/health" else {"detail": "no"})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/asr" or b"RIFF" not in body:
            self._reply(400, {"detail": "expected multipart WAV on /asr"})
            return
        self.calls.append(len(body))
        self._reply(200, {"text": f"external heard {len(body)} bytes", "language": "en"})

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def asr_server() -> Iterator[str]:
    """A real HTTP server on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AsrServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
