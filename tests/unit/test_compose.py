"""The scale-out compose file: services present, the worker points at the cluster, attributes registered."""

from __future__ import annotations

from pathlib import Path

import yaml

from flowtide.workflows.search_attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]


def test_compose_services_and_worker_address():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"postgresql", "temporal", "temporal-ui", "worker", "search-attributes"} <= set(services)
    assert services["temporal"]["environment"]["DB"].startswith("postgres")
    assert services["worker"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert services["worker"]["build"] == "."
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    command = " ".join(services["search-attributes"]["command"])
    for key in SEARCH_ATTRIBUTES:
        assert f"{key.name}=" in command


def test_dockerfile_installs_the_project():
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir ".[postgres,js]"' in text
    assert "flowtide" in text.split("CMD", 1)[1]


def test_cluster_gets_the_same_dynamic_config_as_the_embedded_server():
    from flowtide.client.devserver import PERFORMANCE_CONFIG
    temporal = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["temporal"]
    mount = next(v for v in temporal["volumes"] if "dynamicconfig" in v)
    host, inside = mount.split(":")[:2]
    assert inside.endswith(temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"])
    config = yaml.safe_load((ROOT / host).read_text())
    embedded = dict(item.split("=", 1) for item in PERFORMANCE_CONFIG)
    assert set(config) == set(embedded)
    for key, value in embedded.items():
        assert str(config[key][0]["value"]) == value.strip('"')
