"""The scale-out compose file: services present, the worker points at the cluster, attributes registered."""

from __future__ import annotations

from pathlib import Path

import yaml

from flowtide.workflows.search_attributes import SEARCH_ATTRIBUTES
from tests.support import parts

ROOT = Path(__file__).resolve().parents[2]


def test_compose_services_and_worker_address():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"postgresql", "temporal-schema", "temporal", "temporal-ui", "worker", "search-attributes"} <= set(services)
    assert services["temporal"]["environment"]["DB"].startswith("postgres")
    assert services["worker"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert services["worker"]["build"] == "."
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    command = " ".join(services["search-attributes"]["command"])
    for key in SEARCH_ATTRIBUTES:
        assert f"{key.name}=" in command


def test_dockerfile_installs_the_project():
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir ".[postgres,js,otel]"' in text
    assert "flowtide" in text.split("CMD", 1)[1]


def test_cluster_gets_the_same_dynamic_config_as_the_embedded_server():
    from flowtide.dev.server import PERFORMANCE_CONFIG
    temporal = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["temporal"]
    mount = next(v for v in temporal["volumes"] if "dynamicconfig" in v)
    host, inside = mount.split(":")[:2]
    assert inside.endswith(temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"])
    config = yaml.safe_load((ROOT / host).read_text())
    embedded = dict(item.split("=", 1) for item in PERFORMANCE_CONFIG)
    assert set(config) == set(embedded)
    for key, value in embedded.items():
        assert str(config[key][0]["value"]) == value.strip('"')


def test_api_service_runs_two_replicas_on_postgresql():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    api = services["flowtide-api"]
    assert api["deploy"]["replicas"] == 2 and api["build"] == "."
    assert api["command"][:2] == ["flowtide", "serve"] and "0.0.0.0" in api["command"]
    env = api["environment"]
    url = env["FLOWTIDE_DATABASE_URL"]
    assert url.startswith("postgresql://") and "@postgresql:5432/" in url
    assert url.rsplit("/", 1)[1] == services["postgresql"]["environment"]["POSTGRES_DB"]
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233" and env["FLOWTIDE_TASK_QUEUE"] == "flowtide"
    assert api["depends_on"]["search-attributes"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert any(p.endswith(":8088") for p in api["ports"])


# The Compose Specification's JSON schema as Debian's docker-compose package ships it (.ci/run installs the
# package; the schema cannot be fetched from the network here, and a copied schema would go stale unseen).
COMPOSE_SPEC = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")


def test_compose_file_matches_the_compose_specification_schema():
    import json
    import warnings

    import jsonschema
    if not COMPOSE_SPEC.is_file():
        parts.missing(str(COMPOSE_SPEC), "apt-get install docker-compose")
    spec = json.loads(COMPOSE_SPEC.read_text())
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # that schema predates the top-level `name` key (added to the specification later): checked by hand here
    assert isinstance(doc.pop("name"), str)
    with warnings.catch_warnings():  # it names draft 2019-09 by an URL jsonschema does not know; it is that draft
        warnings.simplefilter("ignore", DeprecationWarning)
        validator = jsonschema.Draft201909Validator(spec)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert problems == []


def test_compose_pins_the_temporal_versions_the_embedded_server_runs():
    """The cluster runs what the tests run: the server and UI versions of the embedded ``temporal`` binary."""
    import re
    import subprocess

    from flowtide.dev.server import temporal_binary
    out = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Server ([0-9.]+), UI ([0-9.]+)", out)
    assert found, out
    server, ui = found.groups()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    images = {name: s["image"] for name, s in services.items() if "image" in s}
    temporal = {name: image for name, image in images.items() if image.startswith("temporalio/")}
    assert temporal["temporal"] == f"temporalio/server:{server}"
    assert temporal["temporal-ui"] == f"temporalio/ui:{ui}"
    tools = {image for image in temporal.values() if image.startswith("temporalio/admin-tools:")}
    assert tools == {f"temporalio/admin-tools:{server}"}


def test_dockerfile_copies_every_room_the_package_links_to():
    """``flowtide/`` reaches the rooms through links: a room left out of the image is a missing package there."""
    rooms = {p.name for p in (ROOT / "flowtide").iterdir() if p.is_symlink()}
    copied = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    assert rooms and rooms <= copied, sorted(rooms - copied)
