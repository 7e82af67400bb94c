"""MLflow set-up shared by training, promotion, packaging and monitoring."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from lifecycle import settings as _settings


def client():
    """Point MLflow at the configured tracking store and return a client."""
    import mlflow
    from mlflow import MlflowClient

    cfg = _settings.load()
    if cfg.mlflow_tracking_uri.startswith("sqlite:///"):
        (cfg.state_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(cfg.mlflow_tracking_uri)
    mlflow.set_registry_uri(cfg.mlflow_tracking_uri)
    return MlflowClient()


def experiment_id(name: str | None = None) -> str:
    """Get or create an experiment with an explicit artifact location (never ./mlruns)."""
    cfg = _settings.load()
    c = client()
    name = name or cfg.experiment
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(name, artifact_location=f"{cfg.mlflow_artifact_root.rstrip('/')}/{name}")


def git_commit() -> str:
    """The source commit: LIFECYCLE_GIT_COMMIT (an image has no repository), else git's HEAD."""
    if commit := _settings.load().git_commit:
        return commit
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=_settings.PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def version_by_alias(alias: str):
    """The registered version holding ``alias``, or None when the registry says there is none: the
    model is not registered, no version holds the alias, or that version no longer exists.

    Any other registry failure (store unreachable, permission denied, a server error) is raised:
    read as "no champion" it would let a challenger through on the floor alone, or release a
    version without keeping the old champion for rollback. The aliases are read from the registered
    model, so no error message has to be parsed (MLflow answers a missing alias with
    INVALID_PARAMETER_VALUE, the code of a malformed request too)."""
    from mlflow.exceptions import MlflowException

    c, name = client(), _settings.load().model_name
    try:
        version = c.get_registered_model(name).aliases.get(alias)
        return None if version is None else c.get_model_version(name, str(version))
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


# Written into a local copy of a registered version (by MLflow, and by Python importing the model's
# code from it); not part of what was logged.
NOT_ARTIFACTS = {"registered_model_meta"}
NOT_ARTIFACT_FOLDERS = {"__pycache__"}

# What loading a logged model imports, by flavour: pinned to the installed (locked) versions
MODEL_PACKAGES = ("mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn")
FLAVOUR_PACKAGES = {"xgboost": ("xgboost",), "pytorch_mlp": ("torch",), "sklearn_logistic": ()}
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # where "+cpu" builds of torch come from


def model_requirements(flavour: str) -> list[str]:
    """A logged model's pip requirements: each package its flavour's loading imports, at the version
    installed here (the lock's). Written, not inferred: MLflow's inference runs a subprocess for
    2-16 s and lists whatever the process imported."""
    from importlib.metadata import version

    pins = [f"{name}=={version(name)}" for name in (*MODEL_PACKAGES, *FLAVOUR_PACKAGES[flavour])]
    return [*pins, f"--extra-index-url {TORCH_CPU_INDEX}"] if any("+cpu" in pin for pin in pins) else pins


def model_code(cfg: _settings.Settings) -> list[str]:
    """The code a logged model carries (``code_paths``): this library and the use case's package,
    which its pickle names, so it loads where neither is installed."""
    from lifecycle import contract

    return [str(Path(__file__).parent), str(contract.package_dir(cfg))]


def artifact_digest(folder: Path) -> str:
    """SHA-256 over a model's files (relative path and content, in path order): recorded at
    registration, checked by the live service before it serves a version."""
    digest = hashlib.sha256()
    for path in sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name not in NOT_ARTIFACTS and not NOT_ARTIFACT_FOLDERS & set(p.relative_to(folder).parts)
    ):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def logged_model_digest(model_uri: str) -> str:
    """``artifact_digest`` of a logged model, downloaded from the tracking store."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory(prefix="digest-") as tmp:
        return artifact_digest(Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)))
