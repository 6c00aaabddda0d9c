"""deploy/k8s/ validated offline: core objects against the Kubernetes OpenAPI schemas bundled
in PyPI's ``kubernetes-validate`` (strict: unknown fields fail), KEDA ScaledObjects against
the schema below (the fields of KEDA's CRD we rely on, unknown fields refused), and both
against the names the code uses (streams, groups, env prefixes, metrics ports)."""

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml

from services.llm.model import BUNDLED_NAME
from services.mt.model import BUNDLED_PAIRS
from services.speaker.model import MODEL_NAME as SPEAKER_MODEL
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.settings import SttSettings
from services.summarizer.model import ExtractiveModel
from shared import streams
from tests.deploy.workers import ENV_PREFIX

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="pip install kubernetes-validate (dev extra)"
)

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
K8S_VERSION = "1.30.0"
# The streams each worker serves with its default model (see each service's __main__); STT's
# from its own WorkerSpec, so a lane added there needs a trigger here.
_TINY = SimpleNamespace(name="tiny.en", languages=["en"])
STREAMS = {
    "stt": stt_spec(_TINY, SttSettings()).lanes,  # type: ignore[arg-type]
    "mt": [streams.jobs("mt", pair) for pair in BUNDLED_PAIRS],
    "tts": [streams.jobs("tts", "en_US-joe-medium")],
    "summarizer": [streams.jobs("summarizer", ExtractiveModel().name)],
    "llm": [streams.jobs("llm", BUNDLED_NAME)],
    "speaker": [streams.jobs("speaker", SPEAKER_MODEL)],
}
# A job stream: its hash tag holds the component and the variant (Redis Cluster keeps a stream
# and its lanes in one slot), optionally followed by a lane.
STREAM_PATTERN = r"^pp:jobs:\{[a-z]+:[^{}]+\}(:[a-z0-9]+)?$"

_COUNT = {"type": "string", "pattern": "^[0-9]+$"}
REDIS_STREAMS_METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["stream", "consumerGroup", "lagCount", "activationLagCount"],
    "oneOf": [{"required": ["address"]}, {"required": ["addressFromEnv"]}],
    "properties": {
        "address": {"type": "string", "pattern": "^[^:]+:[0-9]+$"},
        "addressFromEnv": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"},
        "stream": {"type": "string", "pattern": STREAM_PATTERN},
        "consumerGroup": {"type": "string", "pattern": "^pp:[a-z]+$"},
        "lagCount": _COUNT,
        "activationLagCount": _COUNT,
        "databaseIndex": _COUNT,
        "usernameFromEnv": {"type": "string"},
        "passwordFromEnv": {"type": "string"},
        "enableTLS": {"enum": ["true", "false"]},
    },
}
# The same trigger for a Redis Cluster (deploy/k8s-on-redis-cluster): KEDA's cluster scaler
# takes a list of seed nodes and has no database index.
_CLUSTER_PROPERTIES = {
    k: v
    for k, v in REDIS_STREAMS_METADATA["properties"].items()  # type: ignore[attr-defined]
    if k not in {"address", "addressFromEnv", "databaseIndex"}
}
REDIS_CLUSTER_STREAMS_METADATA = {
    **REDIS_STREAMS_METADATA,
    "oneOf": [{"required": ["addresses"]}, {"required": ["addressesFromEnv"]}],
    "properties": {
        **_CLUSTER_PROPERTIES,
        "addresses": {"type": "string", "pattern": "^[^:,]+:[0-9]+(,[^:,]+:[0-9]+)*$"},
        "addressesFromEnv": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"},
    },
}


def _trigger(kind: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "metadata"],
        "properties": {
            "type": {"const": kind},
            "name": {"type": "string"},
            "metadata": metadata,
            "authenticationRef": {"type": "object"},
        },
    }


SCALED_OBJECT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "apiVersion": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 1},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "oneOf": [
                            _trigger("redis-streams", REDIS_STREAMS_METADATA),
                            _trigger("redis-cluster-streams", REDIS_CLUSTER_STREAMS_METADATA),
                        ]
                    },
                },
            },
        },
    },
}


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def validate(doc: dict[str, Any]) -> None:
    if doc["kind"] == "ScaledObject":
        jsonschema.validate(doc, SCALED_OBJECT)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_manifest_matches_its_schema() -> None:
    docs = documents()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "ScaledObject"}
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize(
    ("kind", "name", "mutate"),
    [
        ("Deployment", "stt", lambda d: d["spec"].update(replicas="two")),
        ("Deployment", "gateway", lambda d: d["spec"]["template"]["spec"].update(container=[])),
        ("ScaledObject", "stt", lambda d: d["spec"]["triggers"][0]["metadata"].pop("lagCount")),
        ("ScaledObject", "mt", lambda d: d["spec"]["triggers"][0]["metadata"].update(lag="5")),
        ("ScaledObject", "tts", lambda d: d["spec"].update(minReplicaCount=0)),
    ],
)
def test_the_validators_reject_broken_manifests(kind: str, name: str, mutate: Any) -> None:
    broken = copy.deepcopy(by_kind(kind)[name])
    mutate(broken)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate(broken)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def env_names(container: dict[str, Any]) -> set[str]:
    """Variables a container gets, directly or from the ConfigMaps it loads."""
    names = {e["name"] for e in container.get("env", [])}
    config_maps = by_kind("ConfigMap")
    for source in container.get("envFrom", []):
        names |= set(config_maps[source["configMapRef"]["name"]]["data"])
    return names


def test_scaled_objects_scale_each_worker_on_its_own_streams() -> None:
    deployments, scaled = by_kind("Deployment"), by_kind("ScaledObject")
    assert set(scaled) == set(STREAMS)
    for component, expected in STREAMS.items():
        spec = scaled[component]["spec"]
        target = deployments[spec["scaleTargetRef"]["name"]]
        [container] = target["spec"]["template"]["spec"]["containers"]
        triggers = [t["metadata"] for t in spec["triggers"]]
        assert sorted(t["stream"] for t in triggers) == sorted(expected)
        for trigger in triggers:
            assert trigger["consumerGroup"] == streams.group(component)
            assert int(trigger["lagCount"]) >= int(trigger["activationLagCount"]) >= 0
            assert trigger["addressFromEnv"] in env_names(container)
        assert spec["maxReplicaCount"] > spec["minReplicaCount"] >= 1


def test_every_worker_has_a_deployment() -> None:
    """Each worker stage runs in the cluster; all but the adapter scale on their backlog
    (the adapter's streams exist only once a server is registered)."""
    workers = set(by_kind("Deployment")) - {"gateway", "redis"}
    assert workers == set(ENV_PREFIX)
    assert set(by_kind("ScaledObject")) == workers - {"external"}


def test_workers_expose_metrics_where_their_annotations_say() -> None:
    for name, deployment in by_kind("Deployment").items():
        template = deployment["spec"]["template"]
        annotations = template["metadata"].get("annotations", {})
        [container] = template["spec"]["containers"]
        assert "REDIS_URL" in env_names(container) or name == "redis"
        if name not in ENV_PREFIX:
            continue
        port = annotations["prometheus.io/port"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[f"{ENV_PREFIX[name]}_METRICS_PORT"] == port
        assert annotations["prometheus.io/scrape"] == "true"
        grace = float(env[f"{ENV_PREFIX[name]}_SHUTDOWN_GRACE_S"])
        assert template["spec"]["terminationGracePeriodSeconds"] > grace


def test_keda_owns_the_replica_count() -> None:
    """A `replicas:` under a ScaledObject would reset the scaled count on every apply."""
    deployments = by_kind("Deployment")
    for scaled in by_kind("ScaledObject").values():
        target = deployments[scaled["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], target["metadata"]["name"]


def test_every_pod_runs_unprivileged_on_a_read_only_image() -> None:
    for name, deployment in by_kind("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["automountServiceAccountToken"] is False, name
        mounts = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {m["name"] for m in container.get("volumeMounts", [])} <= mounts, name


def test_a_redis_blip_restarts_no_gateway() -> None:
    from services.gateway.routes.health import router

    [container] = by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert "/live" in {route.path for route in router.routes}  # type: ignore[attr-defined]


def test_only_pyparrot_pods_and_keda_reach_redis() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    [label] = [pairs["pairs"] for pairs in kustomization["labels"] if pairs["includeTemplates"]]
    [policy] = by_kind("NetworkPolicy").values()
    redis_pod = by_kind("Deployment")["redis"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= redis_pod.items()
    [rule] = policy["spec"]["ingress"]
    allowed = [peer.get("podSelector", {}).get("matchLabels") for peer in rule["from"]]
    assert label in allowed  # every pod template gets this label from kustomize
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
