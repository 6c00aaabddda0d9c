"""deploy/k8s/ rendered as kustomize would apply it (its resources, its namespace), then each
PyParrot container checked against what its code needs to start: the image's target and
entry point, every variable a known setting (a misspelt one is silently ignored otherwise),
the settings built from exactly that environment (ConfigMap values, Secret placeholders),
and for the gateway, the start-up check that refuses an exposed gateway without a key."""

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.gateway import auth
from services.gateway.settings import GatewaySettings
from tests.deploy.test_compose import dockerfile_stages
from tests.deploy.workers import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# Read by KEDA's operator (addressFromEnv; addressesFromEnv on a cluster), not by our code.
KEDA_ONLY = {"REDIS_ADDRESS", "REDIS_ADDRESSES"}
SETTINGS_OF: dict[str, type[BaseSettings]] = {"gateway": GatewaySettings, **SETTINGS}


def render() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            if doc and doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = kustomization["namespace"]
            if doc:
                docs.append(doc)
    return docs


def containers(docs: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """PyParrot's containers (not Redis's), by the Dockerfile target their image names."""
    found = {}
    for doc in render() if docs is None else docs:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            image = container["image"].rsplit("/", 1)[-1].split(":")[0]
            if image.startswith("pyparrot-"):
                found[image.removeprefix("pyparrot-")] = container
    return found


def environment(
    container: dict[str, Any], docs: list[dict[str, Any]] | None = None
) -> dict[str, str]:
    """The container's variables: ConfigMaps it loads, then its own; Secrets as placeholders
    (an optional Secret's variable is left out: the cluster may not have it)."""
    docs = render() if docs is None else docs
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if not ref.get("optional", False):
            env[item["name"]] = f"secret:{ref['name']}/{ref['key']}"
    return env


def known_variables(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c.upper() for c in alias.choices if isinstance(c, str)}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def test_every_target_runs_in_the_cluster_with_its_images_entry_point() -> None:
    stages, running = dockerfile_stages(), containers()
    assert set(running) == set(SETTINGS_OF)
    for target, container in running.items():
        assert "command" not in container and "args" not in container, target
        module = f"services.{target}"
        assert f'CMD ["python", "-m", "{module}"]' in stages[target], target
        assert importlib.util.find_spec(f"{module}.__main__") is not None, target


@pytest.mark.parametrize("target", sorted(SETTINGS_OF))
def test_each_container_gets_the_settings_its_code_reads(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = SETTINGS_OF[target]
    env = environment(containers()[target])
    unknown = set(env) - known_variables(cls) - KEDA_ONLY
    assert not unknown, f"{target} is given variables no setting reads: {sorted(unknown)}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = cls()  # raises on a value the settings refuse
    assert settings.redis_url.startswith("redis://")  # type: ignore[attr-defined]
    if target != "gateway":
        assert settings.metrics_port > 0, target  # type: ignore[attr-defined]


def test_the_gateway_starts_exposed_because_its_key_comes_from_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = containers()["gateway"]
    for name, value in environment(container).items():
        monkeypatch.setenv(name, value)
    settings = GatewaySettings()
    assert settings.host == "0.0.0.0"
    assert auth.startup_problem(settings, stored_keys=0) is None
    [ref] = [
        e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if e["name"] == "GATEWAY_ADMIN_API_KEY"
    ]
    readme = (ROOT / "deploy" / "README.md").read_text()
    command = f"kubectl -n pyparrot create secret generic {ref['name']}"
    assert command in readme and f"--from-literal={ref['key']}=" in readme
    # Without it the gateway would refuse to start (exit 2), as it did before.
    monkeypatch.delenv("GATEWAY_ADMIN_API_KEY")
    assert auth.startup_problem(GatewaySettings(), stored_keys=0) is not None


def test_optional_secrets_feed_settings_that_exist() -> None:
    for target, container in containers().items():
        for item in container.get("env", []):
            if "valueFrom" in item:
                assert item["name"] in known_variables(SETTINGS_OF[target]), (target, item)
