"""`pyparrot up` and a Redis it did not start: it refuses one that holds another
application's keys (it would create streams and consumer groups among them) unless told to
share it, and then says so loudly, in `up`'s output and in `status`."""

import json
from pathlib import Path

import pytest

from pyparrot import stack
from pyparrot.redis_server import free_port
from pyparrot.settings import CliSettings
from shared import bus
from tests.cli.helpers import cli_env, pyparrot

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]


def our_keys(url: str) -> list[bytes]:
    client = bus.sync_client(url)
    try:
        return sorted(client.scan_iter(match="pp:*"))
    finally:
        client.close()


def test_up_refuses_a_redis_another_application_uses(clean_redis: str, tmp_path: Path) -> None:
    client = bus.sync_client(clean_redis)
    client.set("shop:cart:42", "theirs")
    client.close()
    env = cli_env(tmp_path, clean_redis)
    refused = pyparrot("up", "--port", str(free_port()), "--workers", "mt=1", env=env)
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "not PyParrot's (e.g. shop:cart:42)" in message and "--shared-redis" in message
    assert our_keys(clean_redis) == []  # no stream, no consumer group, nothing started
    assert not (tmp_path / "run" / "up.json").exists()


def test_the_environment_can_allow_sharing(
    clean_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = bus.sync_client(clean_redis)
    client.set("shop:cart:42", "theirs")
    client.set("pp:apikeys", "ours")  # PyParrot's own keys are no reason to refuse
    client.close()
    monkeypatch.setenv("REDIS_URL", clean_redis)
    monkeypatch.setenv("PYPARROT_HOME", str(tmp_path))
    with pytest.raises(stack.StackError):
        stack.check_existing_redis(CliSettings())
    monkeypatch.setenv("PYPARROT_SHARED_REDIS", "1")
    assert stack.check_existing_redis(CliSettings()) == {"origin": "shared", "foreign_keys": 1}
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert stack.check_existing_redis(CliSettings())["origin"] == "started"


def test_a_shared_redis_is_announced_by_up_and_status(clean_redis: str, tmp_path: Path) -> None:
    client = bus.sync_client(clean_redis)
    client.set("shop:cart:42", "theirs")
    client.close()
    env = cli_env(tmp_path, clean_redis)
    port = str(free_port())
    up = pyparrot("up", "--detach", "--shared-redis", "--port", port, "--workers", "", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        said = " ".join(up.stdout.split())
        assert f"redis: {clean_redis} was already running: not started by pyparrot" in said
        assert "WARNING: this Redis is shared with another application: 1 key(s)" in said
        table = " ".join(pyparrot("status", env=env).stdout.split())
        assert "WARNING: this Redis is shared with another application" in table
        state = json.loads(pyparrot("status", "--json", env=env).stdout)["redis"]
        assert state["origin"] == "shared" and state["foreign_keys"] == 1
        assert state["foreign_examples"] == ["shop:cart:42"] and state["url"] == clean_redis
    finally:
        assert pyparrot("down", env=env).returncode == 0
    client = bus.sync_client(clean_redis)
    assert client.get("shop:cart:42") == b"theirs"  # theirs untouched, the server still up
    client.close()


def test_a_worker_refuses_to_join_it_too(clean_redis: str, tmp_path: Path) -> None:
    client = bus.sync_client(clean_redis)
    client.set("shop:cart:42", "theirs")
    client.close()
    env = cli_env(tmp_path, clean_redis)
    refused = pyparrot("worker", "mt", "--redis-url", clean_redis, env=env, timeout_s=60)
    assert refused.returncode == 1 and "--shared-redis" in " ".join(refused.stderr.split())
    assert our_keys(clean_redis) == []
