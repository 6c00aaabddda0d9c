"""WhisperLive as a benchmark peer: its own venv under a cache dir, and its server process.

``whisper-live`` cannot share PyParrot's venv: it pins faster-whisper 1.2.0 and tokenizers
0.20.3 and pulls torch with CUDA libraries, OpenVINO, openai-whisper and PyAudio (several
GB, and a downgrade of our faster-whisper). Its faster_whisper backend on the CPU needs far
less, so the venv gets the wheel without its declared dependencies, then what that backend
imports: torch (the CPU build: ``torch==2.13.0`` is the file these machines keep on disk;
a plain ``torch`` would be a CUDA build of several GB), faster-whisper 1.2.0 and the
pinned tokenizers, websockets, numpy, and fastapi/uvicorn (imported by its server module).
The first run builds it (a few minutes); later runs reuse it while the recipe is unchanged.
"""

import hashlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench import REPO
from bench.stack import Child, Stack, StartupError
from pyparrot import redis_server

VERSION = "0.10.0"
REQUIREMENTS = (
    "torch==2.13.0",
    "faster-whisper==1.2.0",
    "tokenizers==0.20.3",
    "websockets",
    "numpy<2.5",
    "fastapi",
    "uvicorn",
    "python-multipart",
)
SERVER = REPO / "bench" / "whisperlive_server.py"
DEFAULT_CACHE = Path.home() / ".cache" / "pyparrot" / "bench"
INSTALL_TIMEOUT_S = 1_800


def _recipe() -> str:
    return "\n".join([f"whisper-live=={VERSION} --no-deps", *REQUIREMENTS])


def venv_python(cache: Path) -> Path:
    """WhisperLive's venv interpreter, built on first use (raises ``StartupError``)."""
    venv = cache / f"whisperlive-{VERSION}"
    python = venv / "bin" / "python"
    marker = venv / "pyparrot-recipe.txt"
    digest = hashlib.sha256(_recipe().encode()).hexdigest()
    if python.is_file() and marker.is_file() and marker.read_text() == digest:
        return python
    print(f"bench live: building WhisperLive's venv in {venv} (once)", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", f"whisper-live=={VERSION}"],
        [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        # pip warns (exit 0) that whisper-live's declared extras are missing: on purpose.
        if done.returncode != 0:
            raise StartupError(f"{' '.join(step[:5])} failed:\n{done.stderr[-2000:]}")
    marker.write_text(digest)
    return python


def listening(port: int) -> bool:
    """True once something accepts TCP connections on ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def spawn(stack: Stack, cache: Path, model_dir: str, max_clients: int) -> tuple[Child, int]:
    """Start WhisperLive's server (tiny.en, int8, beam 1, 2 threads) on a free port."""
    python = venv_python(cache)
    port = redis_server.free_port()
    cmd = [str(python), str(SERVER), "--port", str(port), "--model", model_dir]
    cmd += ["--cpu-threads", "2", "--beam-size", "1", "--max-clients", str(max_clients)]
    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}  # no hub downloads; none of our modules
    child = Child("whisperlive", cmd, env, stack.logs)
    stack.children.append(child)
    return child, port


def wait_listening(child: Child, port: int, timeout_s: float = 180.0) -> None:
    """Wait until the server accepts connections (its imports take ~15 s on a busy box)."""
    deadline = time.monotonic() + timeout_s
    while not listening(port):
        if not child.running():
            raise StartupError(f"whisperlive exited:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise StartupError(f"whisperlive not listening in {timeout_s:.0f} s:\n{child.tail()}")
        time.sleep(0.2)
