"""The scale-out topology (docker-compose.yaml) and its one image (Dockerfile), checked without Docker.

No Docker engine runs on the development machines: the compose file is validated by Debian's
docker-compose 1.29 (`make compose-tool` installs it), its topology and environment contract are
checked here, and the image's install step is checked against the committed requirements.lock.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
DOCKERIGNORE = ROOT / ".dockerignore"

# service -> `python -m lifecycle.platform.cluster run <name>` (the names lifecycle/platform/cluster.py serves)
CLUSTER_SERVICES = {
    "airflow-api-server": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker-default": "worker-default",
    "airflow-worker-gpu": "worker-gpu",
    "mlflow": "mlflow",
    "model": "model",
}
SETUP = "setup"
BUCKET_JOB = "create-bucket"
INFRA = {"postgres", "redis", "minio"}
PROJECT_SERVICES = {*CLUSTER_SERVICES, SETUP}
ONE_SHOT = {SETUP, BUCKET_JOB}
REQUIRED = PROJECT_SERVICES | INFRA | {BUCKET_JOB}
LONG_RUNNING = REQUIRED - ONE_SHOT

# The configuration contract: the project reads only these and derives everything else.
CONTRACT = {
    "LIFECYCLE_PROFILE": "scaleout",
    "LIFECYCLE_POSTGRES_URL": "postgresql://lifecycle:lifecycle@postgres:5432",
    "LIFECYCLE_DB_PREFIX": "lifecycle",
    "LIFECYCLE_REDIS_URL": "redis://redis:6379/0",
    "LIFECYCLE_S3_ENDPOINT_URL": "http://minio:9000",
    "LIFECYCLE_S3_BUCKET": "lifecycle",
    "LIFECYCLE_S3_ACCESS_KEY": None,  # = minio's root user, from a variable
    "LIFECYCLE_S3_SECRET_KEY": None,  # = minio's root password, from a variable
    "LIFECYCLE_MLFLOW_URL": "http://mlflow:5000",
    "LIFECYCLE_AIRFLOW_HOST": "airflow-api-server",
    "LIFECYCLE_AIRFLOW_PORT": "8080",
    "LIFECYCLE_STATE_DIR": "/opt/state",
}
PORTS = {"airflow-api-server": 8080, "mlflow": 5000, "model": 3000}
HEALTH_PATHS = {"airflow-api-server": "/api/v2/monitor/health", "mlflow": "/health", "model": "/livez"}
# what the compose services rely on, pinned in the lock the image installs
KEY_PACKAGES = [
    "apache-airflow",
    "apache-airflow-providers-celery",
    "mlflow",
    "bentoml",
    "feast",
    "psycopg2-binary",
    "redis",
]
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _with_defaults(value: object) -> str:
    """A compose value with every ${VAR:-default} replaced by its default (as on a bare shell)."""
    return _VAR.sub(lambda m: m.group(2) or "", str(value))


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def _healthcheck_text(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return " ".join(test) if isinstance(test, list) else str(test)


def _lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


# 1. the compose tool accepts the file ---------------------------------------------------------


def test_docker_compose_validates_the_file():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail(
            "docker-compose is not installed: run `make compose-tool` (Debian's docker-compose 1.29), "
            "then rerun the tests"
        )
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"`docker-compose config -q` rejected docker-compose.yaml:\n{done.stderr}"


def test_the_project_accepts_the_compose_environment_and_knows_every_command(monkeypatch):
    """The resolved environment of a service is a valid scale-out configuration, and every
    `lifecycle.platform.cluster run <name>` of the file is a process the project defines."""
    tool = shutil.which("docker-compose") or pytest.fail("docker-compose missing: run `make compose-tool`")
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )  # defaults only, no shell overrides
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    for key, value in resolved["airflow-scheduler"]["environment"].items():
        monkeypatch.setenv(key, str(value))
    from lifecycle import settings
    from lifecycle.platform import cluster, env

    cfg = settings.load()
    assert cfg.profile == "scaleout" and cfg.services.redis_url == "redis://redis:6379/0"
    assert env.environment()["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/"
    assert set(CLUSTER_SERVICES.values()) == set(cluster.commands())


# 2. topology ---------------------------------------------------------------------------------


def test_top_comment_says_the_file_is_only_validated():
    head = COMPOSE.read_text().split("\nx-", 1)[0].lower()
    assert "no docker engine" in head and "config -q" in head and "never been" in head


def test_required_services_exist():
    missing = REQUIRED - set(_services())
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_every_long_running_service_has_a_healthcheck(name):
    service = _services()[name]
    check = service.get("healthcheck")
    assert check and not check.get("disable"), f"{name} has no healthcheck"
    test = check.get("test")
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, (
        f"{name}: healthcheck test must be [CMD, ...] or [CMD-SHELL, ...], got {test!r}"
    )
    assert service.get("restart") in ("unless-stopped", "always", "on-failure"), f"{name} is not restarted"


@pytest.mark.parametrize("name", sorted(ONE_SHOT))
def test_one_shot_jobs_are_not_restarted(name):
    service = _services()[name]
    assert service.get("restart", "no") == "no", f"one-shot {name} must not be restarted"
    assert "healthcheck" not in service, f"one-shot {name} is waited for with service_completed_successfully"


def test_depends_on_uses_conditions_that_match_the_dependency():
    services = _services()
    for name, service in services.items():
        deps = service.get("depends_on")
        if deps is None:
            continue
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions, not a list"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = (spec or {}).get("condition")
            if dep in ONE_SHOT:
                assert condition == "service_completed_successfully", f"{name} -> {dep}: {condition}"
            else:
                assert condition == "service_healthy", f"{name} -> {dep}: {condition}"
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy: no healthcheck"


def test_dependencies_are_acyclic_and_setup_comes_first():
    services = _services()
    deps = {name: set(service.get("depends_on") or {}) for name, service in services.items()}

    def closure(name: str, seen: tuple[str, ...] = ()) -> set[str]:
        assert name not in seen, f"dependency cycle: {' -> '.join((*seen, name))}"
        out = set()
        for dep in deps[name]:
            out |= {dep} | closure(dep, (*seen, name))
        return out

    for name in CLUSTER_SERVICES:
        assert services[name]["depends_on"].get(SETUP, {}).get("condition") == "service_completed_successfully", (
            f"{name} must start after {SETUP} completed successfully"
        )
    assert {"postgres", "redis", "minio", BUCKET_JOB} <= closure(SETUP), "setup needs postgres, redis and the bucket"
    assert services[BUCKET_JOB]["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in deps:
        closure(name)


@pytest.mark.parametrize(("name", "queue"), [("airflow-worker-default", "default"), ("airflow-worker-gpu", "gpu")])
def test_workers_serve_their_queue(name, queue):
    service = _services()[name]
    assert _command(service)[-1] == f"worker-{queue}"
    # the worker's Celery node is <queue>@<hostname>: the healthcheck pings exactly that node
    assert re.search(rf"inspect ping\b.*\b{queue}@\$\$\{{HOSTNAME\}}", _healthcheck_text(service)), (
        f"{name}: healthcheck must ping the {queue}@$HOSTNAME Celery node"
    )


@pytest.mark.parametrize(
    ("name", "job"),
    [
        ("airflow-scheduler", "SchedulerJob"),
        ("airflow-dag-processor", "DagProcessorJob"),
        ("airflow-triggerer", "TriggererJob"),
    ],
)
def test_airflow_jobs_check_their_own_heartbeat(name, job):
    check = _healthcheck_text(_services()[name])
    assert f"airflow jobs check --job-type {job} --local" in check, f"{name}: healthcheck must check its {job}"
    # the containers hold only LIFECYCLE_*: the Airflow CLI needs the environment the project derives
    assert re.search(r"eval \"\$\$\(python -m lifecycle\.platform\.env\)\" && airflow ", check), (
        f"{name}: the healthcheck must load `python -m lifecycle.platform.env` before running the Airflow CLI"
    )


def test_gpu_worker_reserves_an_nvidia_gpu_and_default_worker_does_not():
    services = _services()

    def devices(name: str) -> list[dict]:
        return ((services[name].get("deploy") or {}).get("resources") or {}).get("reservations", {}).get("devices", [])

    gpu = devices("airflow-worker-gpu")
    assert any(
        d.get("driver") == "nvidia" and d.get("count") == 1 and "gpu" in d.get("capabilities", []) for d in gpu
    ), f"airflow-worker-gpu must reserve one nvidia gpu, has {gpu!r}"
    assert not devices("airflow-worker-default")


def test_project_services_run_the_one_image_with_their_command():
    services = _services()
    images = set()
    for name in PROJECT_SERVICES:
        service = services[name]
        build = service.get("build")
        if isinstance(build, dict):
            assert build.get("context") in (".", "./") and build.get("dockerfile", "Dockerfile") == "Dockerfile", name
        else:
            assert build in (".", "./"), f"{name} must build from the project's Dockerfile (build: .)"
        images.add(service.get("image"))
        expected = (
            ["python", "-m", "lifecycle.platform.setup"]
            if name == SETUP
            else ["python", "-m", "lifecycle.platform.cluster", "run", CLUSTER_SERVICES[name]]
        )
        assert _command(service) == expected, f"{name}: command {_command(service)!r}, expected {expected!r}"
    assert len(images) == 1 and None not in images, f"project services must share one image name, got {images}"
    others = {name for name, s in services.items() if "build" in s} - PROJECT_SERVICES
    assert not others, f"only project services build the project image: {sorted(others)}"


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_environment_contract(name):
    services = _services()
    env = _env(services[name])
    assert set(env) == set(CONTRACT), (
        f"{name}: environment must be exactly the LIFECYCLE_* contract (the project derives AIRFLOW__*, "
        f"MLflow, Feast and AWS settings); missing {sorted(set(CONTRACT) - set(env))}, "
        f"extra {sorted(set(env) - set(CONTRACT))}"
    )
    for key, value in CONTRACT.items():
        if value is not None:
            assert _with_defaults(env[key]) == value, f"{name}: {key}={env[key]!r}, expected {value!r}"
    assert env["LIFECYCLE_PROFILE"] == "scaleout"
    # credentials: same source as the servers' own, and overridable (no bare hard-coded secret)
    minio = _env(services["minio"])
    assert env["LIFECYCLE_S3_ACCESS_KEY"] == minio["MINIO_ROOT_USER"]
    assert env["LIFECYCLE_S3_SECRET_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    for key in ("LIFECYCLE_S3_ACCESS_KEY", "LIFECYCLE_S3_SECRET_KEY"):
        assert _VAR.fullmatch(env[key]), f"{name}: {key} must come from a variable with a default"
    assert len(_with_defaults(minio["MINIO_ROOT_PASSWORD"])) >= 8, "MinIO refuses root passwords under 8 chars"
    postgres = _env(services["postgres"])
    assert (
        env["LIFECYCLE_POSTGRES_URL"]
        == f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432"
    )
    assert _VAR.fullmatch(postgres["POSTGRES_PASSWORD"])
    assert _env(services[BUCKET_JOB])["BUCKET"] == env["LIFECYCLE_S3_BUCKET"]
    assert "state:/opt/state" in services[name].get("volumes", []), f"{name}: state volume at /opt/state"


@pytest.mark.parametrize("name", sorted(PORTS))
def test_http_services_publish_their_port_and_check_their_health_endpoint(name):
    service = _services()[name]
    port = PORTS[name]
    assert any(str(p).endswith(f":{port}") for p in service.get("ports", [])), f"{name}: port {port} not published"
    check = _healthcheck_text(service)
    assert f"localhost:{port}{HEALTH_PATHS[name]}" in check, f"{name}: healthcheck must GET {HEALTH_PATHS[name]}"
    assert "urllib" in check, f"{name}: HTTP healthchecks use python's urllib (no curl in the image)"


# 3. the image agrees with the lock; infrastructure images are pinned --------------------------


def test_dockerfile_installs_exactly_the_lock():
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM\s", text, re.M)) == 1, "one image, one stage"
    assert re.search(r"^COPY\s+.*\brequirements\.lock\b", text, re.M), "the Dockerfile must COPY requirements.lock"
    installs = [m.group(0) for m in re.finditer(r"pip install[^\n]*", text)]
    assert len(installs) == 2, f"exactly two pip installs (the lock, then the project), got {installs}"
    lock_install, project_install = installs
    assert re.search(r"-r requirements\.lock\b", lock_install), lock_install
    if any("+cpu" in version for version in _lock().values()):
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lock_install, (
            "the lock pins +cpu wheels: the install needs the PyTorch CPU index"
        )
    assert re.search(r"--no-deps\s+-e\s+\.(\s|$)", project_install), project_install
    assert re.search(r"^ENV\b[^#]*\bDO_NOT_TRACK=1", text, re.M | re.S), "DO_NOT_TRACK=1 in the image"
    assert re.search(r"^USER\s+(?!0\b|root\b)\S+", text, re.M), "the services run as a non-root user"


@pytest.mark.parametrize("package", KEY_PACKAGES)
def test_key_packages_are_pinned_in_the_lock(package):
    pins = _lock()
    assert package in pins, f"{package} (used by the compose services) is not in requirements.lock"
    assert re.fullmatch(r"\d+(\.\d+)+(\+\w+)?", pins[package]), f"{package}=={pins[package]} is not an exact pin"


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    entries = {line.strip().strip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".local", ".git"} <= entries
    assert not entries & {
        "requirements.lock",
        "pyproject.toml",
        "README.md",
        "include",
        "dags",
        "plugins",
    }, "the .dockerignore must not hide what the Dockerfile copies"


@pytest.mark.parametrize("name", sorted(INFRA | {BUCKET_JOB}))
def test_infrastructure_images_are_pinned(name):
    image = _services()[name].get("image", "")
    repo, _, tag = image.rpartition(":")
    assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
    assert tag != "latest" and re.search(r"\d+\.\d+|\d{4}-\d{2}-\d{2}", tag), (
        f"{name}: image {image!r} must be pinned to a version tag"
    )
    if name == BUCKET_JOB:
        assert repo == "minio/mc", "the bucket job uses the MinIO client image"
