"""Grafana provisioning checked offline (no Grafana can be installed here): each dashboard's
JSON decoded by the models Grafana generates from its own dashboard schema (PyPI's
``grafana-foundation-sdk``) and encoded again must keep every field and value, so a field
the schema does not have (a misspelt ``gridpos``, a stale option) fails; and every panel's
datasource is the one provisioning creates."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

sdk = pytest.importorskip(
    "grafana_foundation_sdk.models.dashboard", reason="pip install grafana-foundation-sdk (dev)"
)

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PANEL_TYPES = {"timeseries", "stat", "row"}  # core panels the dashboards use


def encoded(value: object) -> object:
    return value.to_json() if hasattr(value, "to_json") else str(value)


def round_trip(dashboard: dict[str, Any]) -> dict[str, Any]:
    model = sdk.Dashboard.from_json(copy.deepcopy(dashboard))
    return json.loads(json.dumps(model.to_json(), default=encoded))  # type: ignore[no-any-return]


def lost(written: object, kept: object, path: str = "") -> list[str]:
    """Where ``kept`` drops or changes something of ``written`` (defaults it adds are fine)."""
    if isinstance(written, dict):
        if not isinstance(kept, dict):
            return [f"{path}: not an object in the schema"]
        return [
            problem
            for key, value in written.items()
            for problem in (
                lost(value, kept[key], f"{path}/{key}")
                if key in kept
                else [f"{path}/{key}: not in the schema"]
            )
        ]
    if isinstance(written, list):
        if not isinstance(kept, list) or len(kept) != len(written):
            return [f"{path}: list changed"]
        return [
            p
            for i, (a, b) in enumerate(zip(written, kept, strict=True))
            for p in lost(a, b, f"{path}[{i}]")
        ]
    return [] if written == kept else [f"{path}: {written!r} became {kept!r}"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_matches_grafanas_schema(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert not lost(dashboard, round_trip(dashboard))
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, (path.name, panel["title"])
        assert panel["targets"], (path.name, panel["title"])


def test_the_check_catches_a_field_grafana_does_not_know() -> None:
    dashboard = json.loads(DASHBOARDS[0].read_text())
    dashboard["panels"][0]["gridpos"] = dashboard["panels"][0].pop("gridPos")
    assert lost(dashboard, round_trip(dashboard)) == ["/panels[0]/gridpos: not in the schema"]


def test_panels_use_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = provisioned["datasources"]
    wanted = {"type": source["type"], "uid": source["uid"]}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"] == wanted, (path.name, panel["title"])
            assert all(t["datasource"] == wanted for t in panel["targets"]), panel["title"]
        for variable in dashboard["templating"]["list"]:
            assert variable["datasource"] == wanted, (path.name, variable["name"])
