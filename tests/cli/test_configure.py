"""`pyparrot configure`: the pipeline's .env, and refusals that write nothing."""

from pathlib import Path

import pytest

from tests.cli.helpers import cli_env, pyparrot

SEED_ENV = """DOMAIN=example.com
FRONTEND_THEME=defaulttheme
HTTP_PORT=8001
DOMAIN_PORT=example.com:8001
EXTERNAL_PORT=8001
EXTERNAL_DOMAIN_PORT=example.com:8001
PIPELINE_NAME=my-pipeline
COMPONENTS_DIR={components}
HF_TOKEN=
BACKENDS=external
STT_BACKEND_URL=http://my-stt-server.com:5000
MT_BACKEND_URL=http://my-mt-server.com:5000
TTS_BACKEND_URL=http://my-tts-server.com:5000
SUM_BACKEND_URL=http://my-summarizer.com:3123
PIPELINE_TYPE=cascaded
"""


def test_configure_writes_the_seed_env(tmp_path: Path) -> None:
    env = cli_env(tmp_path, "redis://127.0.0.1:1/0")
    done = pyparrot(
        "configure", "my-pipeline", "--type", "cascaded", "--backends", "external",
        "--stt-backend-url", "http://my-stt-server.com:5000",
        "--mt-backend-url", "http://my-mt-server.com:5000",
        "--tts-backend-url", "http://my-tts-server.com:5000",
        "--summarizer-backend-url", "http://my-summarizer.com:3123",
        "--domain", "example.com", "--port", "8001",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "✓ Configuration written" in done.stdout
    written = (tmp_path / "my-pipeline" / ".env").read_text()
    components = str(Path(__file__).resolve().parents[2] / "services")
    assert written == SEED_ENV.format(components=components)
    assert [p.name for p in (tmp_path / "my-pipeline").iterdir()] == [".env"]


def test_external_port_differs(tmp_path: Path) -> None:
    env = cli_env(tmp_path, "redis://127.0.0.1:1/0")
    args = ["--domain", "prod.example.com", "--port", "8443", "--external-port", "443"]
    done = pyparrot("configure", "prod", "--type", "BOOM", *args, env=env)
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "prod" / ".env").read_text().splitlines()
    assert "EXTERNAL_DOMAIN_PORT=prod.example.com:443" in written
    assert "BACKENDS=local" in written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "pipeline9"], "unknown pipeline type 'pipeline9'"),
        (["--type", "cascaded", "--backends", "external",
          "--stt-backend-url", "http://stt:5000"], "needs --mt-backend-url"),
        (["--type", "end2end", "--backends", "external"], "needs --stt-backend-url"),
        (["--type", "end2end", "--backends", "external",
          "--stt-backend-url", "stt-server:5000"], "not an http(s) URL"),
        (["--type", "end2end", "--stt-backend-url", "http://:5000"], "not an http(s) URL"),
        (["--type", "end2end", "--backends", "cloud"], "backends"),
        (["--type", "end2end", "--domain", "bad domain/x"], "domain"),
    ],
)  # fmt: skip
def test_bad_input_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    env = cli_env(tmp_path, "redis://127.0.0.1:1/0")
    base = ["configure", "p1", "--domain", "example.com", "--port", "8001"]
    done = pyparrot(*base, *args, env=env)
    assert done.returncode != 0
    assert message in " ".join(done.stderr.split()), done.stderr
    assert not (tmp_path / "p1" / ".env").exists()
    assert not list(tmp_path.rglob("*.tmp"))
