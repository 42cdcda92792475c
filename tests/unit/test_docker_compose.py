"""docker-compose.yml cannot run here (no Docker engine), so it is checked against the code."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from shared.settings import PROJECT_ROOT, ServiceSettings

SERVICES = ("tasks", "notifications", "audit", "web")
COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    found: type[ServiceSettings] = getattr(module, f"{service.capitalize()}Settings")
    assert issubclass(found, ServiceSettings)
    return found


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every variable a settings class reads, its nested settings classes' included."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for name, info in settings.model_fields.items():
        nested = info.default_factory
        if isinstance(nested, type) and issubclass(nested, BaseSettings):
            names |= env_names(nested)
        else:
            names.add((prefix + name).upper())
    return names


KNOWN_ENV = set().union(*(env_names(settings_class(service)) for service in SERVICES))


def test_kafka_is_the_official_image_in_kraft_mode_with_a_health_check() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "healthcheck" in kafka
    assert "127.0.0.1:9092:9092" in kafka["ports"]


@pytest.mark.parametrize("compose", [COMPOSE, "cluster"], ids=["one node", "three nodes"])
def test_every_broker_authenticates_and_authorizes_every_client(compose: object) -> None:
    services = (CLUSTER if compose == "cluster" else COMPOSE)["services"]
    brokers = [spec for name, spec in {**COMPOSE["services"], **services}.items() if name.startswith("kafka")]
    for broker in brokers:
        environment = {**COMPOSE["services"]["kafka"]["environment"], **broker.get("environment", {})}
        protocols = dict(item.split(":") for item in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no listener takes a client without credentials"
        assert environment["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")[0] == "SCRAM-SHA-512"
        assert environment["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
        assert environment["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert (PROJECT_ROOT / "deploy" / "kafka" / "compose-broker.sh").exists()
    assert "Provision.java" in " ".join(COMPOSE["services"]["provision"]["command"])


@pytest.mark.parametrize("service", SERVICES[:3])
def test_each_service_holds_its_own_password_and_key_only(service: str) -> None:
    mounts = [m for m in COMPOSE["services"][service]["volumes"] if isinstance(m, dict)]
    passwords = [m["volume"]["subpath"] for m in mounts if m["source"] == "kafka-credentials"]
    keys = [m["volume"]["subpath"] for m in mounts if m["source"] == "keys"]
    assert passwords == [f"svc-{service}"]
    assert sorted(keys) == sorted([service, "trust"])


def test_topics_are_created_once_the_principals_are_provisioned() -> None:
    topics = COMPOSE["services"]["topics"]
    assert topics["command"][:3] == ["python", "-m", "shared.kafka.topics"]
    assert importlib.util.find_spec("shared.kafka.topics") is not None
    assert topics["environment"]["POLICYTRACK_KAFKA_USERNAME"] == "admin"
    assert topics["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert COMPOSE["services"]["provision"]["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_wired_as_its_settings_expect(service: str) -> None:
    spec = COMPOSE["services"][service]
    settings = settings_class(service)
    port = settings.model_fields["port"].default
    environment = {name: str(value) for name, value in spec["environment"].items()}
    prefix = settings.model_config["env_prefix"]

    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert (Path(PROJECT_ROOT) / "services" / service).is_dir()
    assert f"127.0.0.1:{port}:{port}" in spec["ports"]
    assert environment[f"{prefix}PORT"] == str(port)
    assert environment[f"{prefix}HOST"] == "0.0.0.0", "the service must listen beyond the container's loopback"
    internal_listener = COMPOSE["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")[0]
    assert environment["POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS"] == internal_listener.removeprefix("SASL_PLAINTEXT://")
    assert spec["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert f"127.0.0.1:{port}/readyz" in " ".join(spec["healthcheck"]["test"])
    unknown = {name for name in environment if name.startswith("POLICYTRACK_")} - KNOWN_ENV
    assert not unknown, f"{service} sets variables no settings class reads: {unknown}"


def test_the_dashboard_reads_each_service_where_compose_runs_it() -> None:
    environment = COMPOSE["services"]["web"]["environment"]
    for service in SERVICES[:3]:
        port = settings_class(service).model_fields["port"].default
        assert environment[f"POLICYTRACK_WEB_{service.upper()}_URL"] == f"http://{service}:{port}"
        assert COMPOSE["services"]["web"]["depends_on"][service]["condition"] == "service_healthy"


def test_dockerfile_installs_the_pinned_project() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "-c constraints.txt" in dockerfile
    for package in ("shared", "services", "policytrack"):
        assert f"COPY {package} ./{package}" in dockerfile


CLUSTER = yaml.safe_load((PROJECT_ROOT / "docker-compose.cluster.yml").read_text())


def test_the_cluster_profile_runs_three_voting_nodes_with_replicated_topics() -> None:
    nodes = {name: spec for name, spec in CLUSTER["services"].items() if name.startswith("kafka")}
    assert sorted(nodes) == ["kafka", "kafka-2", "kafka-3"]
    ids = sorted(int(spec["environment"]["KAFKA_NODE_ID"]) for spec in nodes.values())
    assert ids == [1, 2, 3]
    for spec in nodes.values():
        environment = spec["environment"]
        assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert (environment["KAFKA_MIN_INSYNC_REPLICAS"], environment["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"]) == (
            2,
            "false",
        )
    host_ports = {p.split(":")[1] for spec in nodes.values() for p in spec.get("ports", [])}
    assert host_ports == {"9093", "9094"}, "node 1 keeps docker-compose.yml's 127.0.0.1:9092"


@pytest.mark.parametrize("service", ("topics", *SERVICES))
def test_in_the_cluster_profile_every_client_knows_all_three_nodes(service: str) -> None:
    environment = CLUSTER["services"][service]["environment"]
    assert environment["POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS"].count(":19092") == 3
    assert (
        environment["POLICYTRACK_KAFKA_REPLICATION_FACTOR"],
        environment["POLICYTRACK_KAFKA_MIN_INSYNC_REPLICAS"],
    ) == (
        "3",
        "2",
    )


@pytest.mark.parametrize("service", SERVICES[:3])
def test_the_cluster_profile_runs_a_second_instance_that_shares_the_work(service: str) -> None:
    first, second = CLUSTER["services"][service], CLUSTER["services"][f"{service}-2"]
    settings = settings_class(service)
    assert second["command"] == ["python", "-m", f"services.{service}"]
    environment = {name: str(value) for name, value in second["environment"].items()}
    assert environment[f"{settings.model_config['env_prefix']}HOST"] == "0.0.0.0"
    shared = {name: str(value) for name, value in first["environment"].items()}
    assert shared.items() <= environment.items(), "both instances run with the same cluster settings"
    unknown = {name for name in environment if name.startswith("POLICYTRACK_")} - KNOWN_ENV
    assert not unknown, f"{service}-2 sets variables no settings class reads: {unknown}"
    named = {volume.split(":")[0] for volume in second["volumes"] if isinstance(volume, str)}
    assert named & {f"{service}-data"} == set(), "data of its own"


def test_in_the_cluster_profile_writers_share_partitions_and_audit_a_postgresql_store() -> None:
    services = CLUSTER["services"]
    assert services["tasks"]["environment"]["POLICYTRACK_TASKS_PARTITIONED_WRITERS"] == "true"
    assert services["notifications"]["environment"]["POLICYTRACK_NOTIFICATIONS_PARTITIONED"] == "true"
    assert "SEALING_KEY" in " ".join(services["notifications"]["environment"]), "one sealing key for both"
    assert services["audit"]["environment"]["POLICYTRACK_AUDIT_DSN"].startswith("postgresql+asyncpg://")
    mounts = [m for m in services["audit-2"]["volumes"] if isinstance(m, dict) and m["source"] == "keys"]
    assert {m["volume"]["subpath"] for m in mounts} == {"audit", "trust"}, "one signing key for the chain"
