"""deploy/k8s-on-redis-cluster rendered by kustomize itself (its patches are kustomize's to
apply): PyParrot on the Redis Cluster of deploy/k8s/redis-cluster, checked like the base
(schemas, each container's settings built from its environment) and for the cluster's wiring:
seeds that are its pods, KEDA's cluster scaler on the base's streams, six nodes formed by a
Job, and a network policy that lets the nodes reach each other."""

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shared import bus
from tests.deploy import test_k8s, test_k8s_render

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "k8s-on-redis-cluster"
NODES = 6  # three primaries, a replica each


def kustomize() -> list[str]:
    for binary, command in (("kustomize", ["build"]), ("kubectl", ["kustomize"])):
        found = shutil.which(binary)
        if found:
            return [found, *command]
    pytest.skip("neither kustomize nor kubectl is installed")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    result = subprocess.run(
        [*kustomize(), str(OVERLAY)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_names(docs: list[dict[str, Any]]) -> list[str]:
    """The stable DNS names of the cluster's pods (StatefulSet pods behind a headless Service)."""
    [statefulset] = of_kind(docs, "StatefulSet").values()
    service, namespace = statefulset["spec"]["serviceName"], statefulset["metadata"]["namespace"]
    name, replicas = statefulset["metadata"]["name"], statefulset["spec"]["replicas"]
    return [f"{name}-{i}.{service}.{namespace}.svc.cluster.local" for i in range(replicas)]


def test_the_cluster_manifests_match_their_schemas_without_kustomize() -> None:
    """deploy/k8s/redis-cluster is plain manifests: checked even where kustomize is missing."""
    cluster = ROOT / "deploy" / "k8s" / "redis-cluster"
    kustomization = yaml.safe_load((cluster / "kustomization.yaml").read_text())
    files = {p.name for p in cluster.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    for name in sorted(files):
        for doc in yaml.safe_load_all((cluster / name).read_text()):
            test_k8s.validate(doc)


def test_every_object_matches_its_schema(rendered: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in rendered}
    assert {"StatefulSet", "Job", "ScaledObject", "NetworkPolicy"} <= kinds
    for doc in rendered:
        test_k8s.validate(doc)


def test_the_single_redis_makes_way_for_a_cluster_of_six(rendered: list[dict[str, Any]]) -> None:
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        assert "redis" not in of_kind(rendered, kind), kind
    [statefulset] = of_kind(rendered, "StatefulSet").values()
    assert statefulset["spec"]["replicas"] == NODES
    service = of_kind(rendered, "Service")[statefulset["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name per pod
    assert service["spec"]["publishNotReadyAddresses"] is True
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    config_map = statefulset["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
    config = of_kind(rendered, "ConfigMap")[config_map]["data"]["redis.conf"].splitlines()
    assert "cluster-enabled yes" in config
    assert "cluster-preferred-endpoint-type hostname" in config
    data = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["data"]
    assert f"cluster-config-file {data}/nodes.conf" in config  # on the claim, not the image
    # Each node announces the name its pod has in the headless Service.
    announce = container["args"][container["args"].index("--cluster-announce-hostname") + 1]
    assert (
        announce == f"$(POD_NAME).{service['metadata']['name']}.$(POD_NAMESPACE).svc.cluster.local"
    )
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    [job] = of_kind(rendered, "Job").values()
    [init] = job["spec"]["template"]["spec"]["containers"]
    nodes = {e["name"]: e["value"] for e in init["env"]}["NODES"].split()
    assert [f"{n}.{statefulset['metadata']['namespace']}.svc.cluster.local" for n in nodes] == (
        pod_names(rendered)
    )
    assert "--cluster-replicas 1 --cluster-yes" in init["command"][-1]


def test_every_client_seeds_from_the_clusters_pods(rendered: list[dict[str, Any]]) -> None:
    config = of_kind(rendered, "ConfigMap")["pyparrot-config"]["data"]
    assert "REDIS_ADDRESS" not in config  # the single Redis it named is gone
    seeds, _ = bus.cluster_seeds(config["REDIS_URL"])
    assert [host for host, _ in seeds] == pod_names(rendered)
    assert {port for _, port in seeds} == {6379}
    assert config["REDIS_ADDRESSES"] == ",".join(f"{host}:{port}" for host, port in seeds)


def test_keda_scales_on_the_base_streams_through_the_cluster(
    rendered: list[dict[str, Any]],
) -> None:
    scaled, base = of_kind(rendered, "ScaledObject"), test_k8s.by_kind("ScaledObject")
    assert set(scaled) == set(base)
    config = of_kind(rendered, "ConfigMap")
    for name, scaled_object in scaled.items():
        triggers = scaled_object["spec"]["triggers"]
        assert [t["type"] for t in triggers] == ["redis-cluster-streams"] * len(triggers), name
        expected = [t["metadata"]["stream"] for t in base[name]["spec"]["triggers"]]
        assert [t["metadata"]["stream"] for t in triggers] == expected, name
        target = of_kind(rendered, "Deployment")[scaled_object["spec"]["scaleTargetRef"]["name"]]
        [container] = target["spec"]["template"]["spec"]["containers"]
        loaded = {
            key
            for source in container["envFrom"]
            for key in config[source["configMapRef"]["name"]]["data"]
        }
        assert all(t["metadata"]["addressesFromEnv"] in loaded for t in triggers), name


def test_the_validator_rejects_a_single_address_on_the_cluster_scaler(
    rendered: list[dict[str, Any]],
) -> None:
    broken = copy.deepcopy(of_kind(rendered, "ScaledObject")["stt"])
    broken["spec"]["triggers"][0]["metadata"]["addressFromEnv"] = "REDIS_ADDRESS"
    with pytest.raises(jsonschema.ValidationError):
        test_k8s.validate(broken)


@pytest.mark.parametrize("target", sorted(test_k8s_render.SETTINGS_OF))
def test_each_container_gets_the_settings_its_code_reads(
    target: str, rendered: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = test_k8s_render.SETTINGS_OF[target]
    env = test_k8s_render.environment(test_k8s_render.containers(rendered)[target], rendered)
    unknown = set(env) - test_k8s_render.known_variables(cls) - test_k8s_render.KEDA_ONLY
    assert not unknown, f"{target} is given variables no setting reads: {sorted(unknown)}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = cls()
    assert bus.is_cluster_url(settings.redis_url)  # type: ignore[attr-defined]


def test_only_pyparrot_pods_and_keda_reach_the_cluster(rendered: list[dict[str, Any]]) -> None:
    [policy] = of_kind(rendered, "NetworkPolicy").values()
    [statefulset] = of_kind(rendered, "StatefulSet").values()
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    clients, bus_rule = policy["spec"]["ingress"]
    assert clients["ports"] == [{"port": 6379, "protocol": "TCP"}]
    peers = [p.get("podSelector", {}).get("matchLabels") for p in clients["from"]]
    assert {"app.kubernetes.io/part-of": "pyparrot"} in peers
    # The cluster bus: the nodes' gossip and failover, from the nodes alone.
    assert bus_rule["ports"] == [{"port": 16379, "protocol": "TCP"}]
    [peer] = bus_rule["from"]
    assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items()
    # The Job that forms the cluster is a client too: it carries the label kustomize adds.
    [job] = of_kind(rendered, "Job").values()
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "pyparrot"


def test_every_redis_pod_runs_unprivileged_on_a_read_only_image(
    rendered: list[dict[str, Any]],
) -> None:
    for kind in ("StatefulSet", "Job"):
        for name, workload in of_kind(rendered, kind).items():
            pod = workload["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] > 0, name
            assert pod["automountServiceAccountToken"] is False, name
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["capabilities"]["drop"] == ["ALL"], name
