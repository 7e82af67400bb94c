"""The scale-out topology (docker-compose.yaml) and its two images (Dockerfile), checked without Docker.

No Docker engine runs on the development machines: the compose file is validated by Debian's
docker-compose 1.29 (`make compose-tool` installs it), its topology and environment contract are
checked here, and the install steps of both images (the default CPU target and the `gpu` target of
the gpu-queue worker) are checked against the committed requirements.lock.
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
GPU_WORKER = "airflow-worker-gpu"  # the one service on the Dockerfile's `gpu` target
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
_PYTORCH_INDEX = re.compile(r"https://download\.pytorch\.org/whl/(\w+)")


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


def _devices(service: dict) -> list[dict]:
    return ((service.get("deploy") or {}).get("resources") or {}).get("reservations", {}).get("devices", [])


def _stages() -> dict[str, tuple[str, str]]:
    """The Dockerfile's stages in file order: name -> (what it is FROM, its instructions with line
    continuations joined). The last one is what `docker build .` builds."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages = {}
    for block in re.split(r"^(?=FROM\s)", text, flags=re.M)[1:]:
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", block, re.I)
        assert match and match.group(2), f"every Dockerfile stage is named (FROM ... AS <name>): {block[:60]!r}"
        stages[match.group(2)] = (match.group(1), block)
    return stages


def _installs(stage: str) -> list[str]:
    return re.findall(r"pip install[^\n]*", _stages()[stage][1])


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


def test_gpu_worker_reserves_an_nvidia_gpu_and_no_other_service_does():
    services = _services()
    gpu = _devices(services[GPU_WORKER])
    assert any(
        d.get("driver") == "nvidia" and d.get("count") == 1 and "gpu" in d.get("capabilities", []) for d in gpu
    ), f"{GPU_WORKER} must reserve one nvidia gpu, has {gpu!r}"
    others = sorted(name for name, service in services.items() if name != GPU_WORKER and _devices(service))
    assert not others, f"only {GPU_WORKER} reserves a GPU: {others}"


def test_only_the_gpu_worker_runs_the_gpu_image():
    """The gpu-queue worker builds the Dockerfile's `gpu` target under its own image name; every other
    project service builds the CPU target (the default, the file's last stage) into the shared image."""
    services = _services()
    stages = list(_stages())
    default_target = stages[-1]
    assert default_target == "cpu" and "gpu" in stages, f"Dockerfile stages {stages}: `gpu`, and `cpu` last"
    gpu_build = services[GPU_WORKER]["build"]
    assert isinstance(gpu_build, dict) and gpu_build.get("target") == "gpu", f"{GPU_WORKER} builds target gpu"
    assert gpu_build.get("args", {}).get("GIT_COMMIT") == "${GIT_COMMIT:-}", "the gpu image records the commit too"
    gpu_image = services[GPU_WORKER].get("image")
    for name in sorted(PROJECT_SERVICES - {GPU_WORKER}):
        build = services[name]["build"]
        target = build.get("target", default_target) if isinstance(build, dict) else default_target
        assert target == "cpu", f"{name} must run the CPU image, builds target {target!r}"
        assert services[name].get("image") != gpu_image, f"{name} must not share the gpu image name {gpu_image}"


def test_project_services_run_the_project_images_with_their_command():
    services = _services()
    images = set()
    for name in PROJECT_SERVICES:
        service = services[name]
        build = service.get("build")
        if isinstance(build, dict):
            assert build.get("context") in (".", "./") and build.get("dockerfile", "Dockerfile") == "Dockerfile", name
        else:
            assert build in (".", "./"), f"{name} must build from the project's Dockerfile (build: .)"
        if name != GPU_WORKER:
            images.add(service.get("image"))
        expected = (
            ["python", "-m", "lifecycle.platform.setup"]
            if name == SETUP
            else ["python", "-m", "lifecycle.platform.cluster", "run", CLUSTER_SERVICES[name]]
        )
        assert _command(service) == expected, f"{name}: command {_command(service)!r}, expected {expected!r}"
    assert len(images) == 1 and None not in images, f"CPU services must share one image name, got {images}"
    assert services[GPU_WORKER].get("image") not in images | {None}, f"{GPU_WORKER} has its own image name"
    others = {name for name, s in services.items() if "build" in s} - PROJECT_SERVICES
    assert not others, f"only project services build the project images: {sorted(others)}"


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


def test_dockerfile_stages_share_one_base():
    """base (system packages, user, the lock) -> gpu and cpu, each installing its torch build on top of
    base: neither image carries the other's torch."""
    stages = _stages()
    assert set(stages) == {"base", "gpu", "cpu"}, f"Dockerfile stages: {list(stages)}"
    assert stages["base"][0].startswith("python:3.11-"), stages["base"][0]
    assert stages["gpu"][0] == "base" and stages["cpu"][0] == "base"
    base = stages["base"][1]
    assert re.search(r"^COPY\s+.*\brequirements\.lock\b", base, re.M), "the base stage must COPY requirements.lock"
    assert not _installs("base"), "the lock is installed per target, not in base"
    assert re.search(r"^ENV\b[^#]*\bDO_NOT_TRACK=1", base, re.M | re.S), "DO_NOT_TRACK=1 in both images"
    assert re.search(r"^ARG\s+GIT_COMMIT\b", base, re.M) and "LIFECYCLE_GIT_COMMIT=${GIT_COMMIT}" in base
    for target in ("gpu", "cpu"):
        text = stages[target][1]
        assert re.search(r"^USER\s+(?!0\b|root\b)\S+", text, re.M), f"{target}: services run as a non-root user"
        for folder in ("include", "dags", "plugins"):
            assert re.search(rf"^COPY\s+{folder}\s", text, re.M), f"{target}: the image holds {folder}/"


def test_default_cpu_image_installs_exactly_the_lock():
    installs = _installs("cpu")
    assert len(installs) == 2, f"cpu: exactly two pip installs (the lock, then the project), got {installs}"
    lock_install, project_install = installs
    assert re.search(r"-r requirements\.lock\b", lock_install), lock_install
    torch = _lock()["torch"]
    assert torch.endswith("+cpu"), f"the lock pins torch's CPU build, not {torch}"
    assert _PYTORCH_INDEX.findall(lock_install) == ["cpu"], (
        "the lock pins +cpu wheels: the install needs the PyTorch CPU index, and no other"
    )
    assert re.search(r"--no-deps\s+-e\s+\.(\s|$)", project_install), project_install


def test_gpu_image_installs_the_lock_with_the_cuda_build_of_the_locked_torch():
    installs = _installs("gpu")
    assert len(installs) == 2, f"gpu: exactly two pip installs (the lock, then the project), got {installs}"
    lock_install, project_install = installs
    text = _stages()["gpu"][1]
    # the lock minus its torch line, installed together with the CUDA torch in one resolution
    derived = re.search(r"grep -v '\^torch==' requirements\.lock > (\S+)", text)
    assert derived, "gpu: the installed lock is requirements.lock without its torch line"
    assert re.search(rf"-r {re.escape(derived.group(1))}(\s|$)", lock_install), lock_install
    indexes = _PYTORCH_INDEX.findall(lock_install)
    assert len(indexes) == 1 and re.fullmatch(r"cu\d{3}", indexes[0]), f"gpu: one PyTorch CUDA index, got {indexes}"
    assert "--extra-index-url" in lock_install, "the rest of the lock comes from PyPI"
    pinned = re.findall(r"\btorch==(\S+)", lock_install)
    version = _lock()["torch"].split("+")[0]
    assert pinned == [f"{version}+{indexes[0]}"], (
        f"gpu: torch must be the locked version {version} built for {indexes[0]}, got {pinned}"
    )
    assert re.search(r"--no-deps\s+-e\s+\.(\s|$)", project_install), project_install
    # xgboost's locked Linux wheel carries CUDA (its NCCL is in the lock): nothing replaces it
    assert not any("xgboost" in install for install in installs), installs
    assert "nvidia-nccl-cu12" in _lock(), "the locked xgboost wheel's NCCL dependency"


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
