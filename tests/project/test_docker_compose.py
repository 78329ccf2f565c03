"""docker-compose.yaml and its Dockerfile, checked by structure (no Docker engine runs here):
the services of the official Airflow 3 file, each with its command, health check, mounts and
environment; the image built from the pinned Airflow with Java and the requirements; no secret."""
from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
REQUIREMENTS = (PROJECT_ROOT / "requirements.txt").read_text()
# The long-running Airflow components of the official file (Celery's worker excepted: the
# LocalExecutor runs tasks in the scheduler) and the command each runs.
COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = [*COMPONENTS, "airflow-init", "airflow-cli"]
# Where the image's Airflow looks (AIRFLOW_HOME=/opt/airflow) and where the project's code is.
MOUNTS = {
    "./dags": "/opt/airflow/dags",
    "./plugins": "/opt/airflow/plugins",
    "./include": "/opt/airflow/include",
    "./spark_jobs": "/opt/airflow/spark_jobs",
    "./data": "/opt/airflow/data",
    "./logs": "/opt/airflow/logs",
    "./data/airflow-config": "/opt/airflow/config",
}


def resolve(value: str) -> str:
    """Compose's ${VAR:-default} with the defaults (no variable set)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def volumes(service: dict) -> dict[str, str]:
    pairs = (resolve(v).split(":")[:2] for v in service.get("volumes", []))
    return {host: container for host, container in pairs}


def environment(service: dict) -> dict[str, str]:
    return {k: resolve(str(v)) for k, v in service.get("environment", {}).items()}


def test_the_services_are_the_official_ones_on_one_machine():
    assert set(SERVICES) == {"postgres", *AIRFLOW_SERVICES}
    assert SERVICES["airflow-cli"]["profiles"] == ["debug"]
    for name, command in COMPONENTS.items():
        assert SERVICES[name]["command"] == command, name
        assert SERVICES[name]["restart"] == "always", name


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_every_airflow_service_runs_the_project_image_with_its_folders_and_settings(name):
    service = SERVICES[name]
    assert service["build"] == "."
    assert resolve(service["image"]) == "mining-pool-classifier-airflow:3.1.8"
    mounts = volumes(service)
    assert mounts == MOUNTS
    for host in mounts:
        if not host.startswith("./data"):  # data/ is made by the first run, and ignored by git
            assert (PROJECT_ROOT / host).is_dir() or host == "./logs", host
    env = environment(service)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW_CONFIG"].startswith(MOUNTS["./data/airflow-config"] + "/")
    assert env["POOL_CLASSIFIER_TARGET"] == "local"
    assert env["POOL_CLASSIFIER_DATA_DIR"] == MOUNTS["./data"]
    assert MOUNTS["./plugins"] in env["PYTHONPATH"].split(":")
    assert env["TZ"] == "UTC" and env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "utc"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert service["user"] == ("0:0" if name == "airflow-init" else "${AIRFLOW_UID:-50000}:0")


def test_the_metadata_db_and_the_execution_api_point_at_their_services():
    env = environment(SERVICES["airflow-scheduler"])
    db = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    postgres = SERVICES["postgres"]["environment"]
    assert db.scheme.startswith("postgresql") and db.hostname == "postgres"
    assert (db.username, db.password, db.path.lstrip("/")) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
    )
    api = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    published = SERVICES["airflow-apiserver"]["ports"][0].split(":")
    assert api.hostname == "airflow-apiserver" and api.port == int(published[-1])
    assert api.path == "/execution/"


def test_the_ui_is_published_on_the_loopback_only():
    """Every user is an admin (simple auth manager): never on the network."""
    assert SERVICES["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    env = environment(SERVICES["airflow-apiserver"])
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert all("ports" not in SERVICES[name] for name in SERVICES if name != "airflow-apiserver")


def test_components_wait_for_a_healthy_db_and_the_init_job_and_have_health_checks():
    for name in COMPONENTS:
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "http://localhost:8080/api/v2/monitor/health" in SERVICES["airflow-apiserver"]["healthcheck"]["test"]
    assert "http://localhost:8974/health" in SERVICES["airflow-scheduler"]["healthcheck"]["test"]
    assert environment(SERVICES["airflow-scheduler"])["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]


def test_the_init_job_migrates_the_db_and_writes_the_shared_config():
    init = SERVICES["airflow-init"]
    assert environment(init)["_AIRFLOW_DB_MIGRATE"] == "true"
    script = init["command"][-1]
    assert "airflow config list" in script
    assert "chown" in script


def test_no_secret_is_in_the_compose_file():
    """The Fernet key and the JWT secret are generated into the git-ignored config file."""
    for name in AIRFLOW_SERVICES:
        env = environment(SERVICES[name])
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
            assert key not in env, f"{name}: {key} must come from the generated config or .env"
    ignored = (PROJECT_ROOT / ".gitignore").read_text().split()
    assert "data/" in ignored  # where airflow-config/ (and so airflow.cfg) lives


def test_the_image_is_the_pinned_airflow_with_java_and_the_requirements():
    pinned = re.search(r"^apache-airflow==([\d.]+)", REQUIREMENTS, re.M).group(1)
    base = re.search(r"^FROM apache/airflow:([\d.]+)-python([\d.]+)$", DOCKERFILE, re.M)
    assert base and base.group(1) == pinned
    assert base.group(2) == "3.11"  # requirements.txt is compiled for Python 3.11
    assert "openjdk-17-jre-headless" in DOCKERFILE and "JAVA_HOME" in DOCKERFILE
    assert "COPY requirements.txt" in DOCKERFILE
    assert re.search(r'pip install --no-cache-dir "apache-airflow==\$\{AIRFLOW_VERSION\}" -r', DOCKERFILE)
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users[-1] == "airflow"  # never runs as root


def test_the_build_context_sends_only_the_requirements():
    ignore = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*"):] == ["*", "!requirements.txt"]
