# The project's images, two targets of one file (multi-stage), both installing the committed lock:
#   cpu (the default, the LAST stage: `docker build .` builds it): every project service of
#       docker-compose.yaml (Airflow api-server, scheduler, dag-processor, triggerer, the `default`
#       Celery worker, the set-up job, MLflow and the BentoML model service);
#   gpu (`docker build --target gpu .`): the Celery worker of queue `gpu` only. The same lock, except
#       that torch is the CUDA build of the same version from the PyTorch CUDA index; the locked
#       xgboost wheel already carries its CUDA support. Needs an NVIDIA driver that runs CUDA 13.0
#       (>= 580) and the NVIDIA container toolkit on the host.
# Each service runs `python -m lifecycle.platform.cluster run <name>` / `python -m lifecycle.platform.setup`.
# Each installs the lock, then the project library (--no-deps: the lock is the whole environment);
# DAGs, plugins and the feature repo are in the image, so every service runs the same code.
# Configuration comes only from LIFECYCLE_* variables (docker-compose.yaml); the project derives every
# AIRFLOW__*, MLflow, Feast and AWS setting from them, so none is set here.
# Never built on the development machines (no Docker engine there): tests/unit/test_compose.py checks
# this file against requirements.lock.
FROM python:3.11-slim-bookworm AS base

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DO_NOT_TRACK=1 FEAST_USAGE=False MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true \
    SCARF_ANALYTICS=false AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False GX_ANALYTICS_ENABLED=False \
    LIFECYCLE_STATE_DIR=/opt/state

# build-essential: any locked package without a wheel. No git: the build context leaves .git out
# (.dockerignore), so the commit that trained a model comes from the GIT_COMMIT build argument.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ARG GIT_COMMIT=""
ENV LIFECYCLE_GIT_COMMIT=${GIT_COMMIT}

# Non-root user 50000 (Airflow's convention) with a passwd entry (getpass.getuser() needs one);
# /opt/state is created owned by it so the named state volume starts writable.
RUN useradd --uid 50000 --gid 0 --create-home --shell /bin/bash lifecycle \
    && mkdir -p /opt/state && chown 50000:0 /opt/state && chmod 2775 /opt/state

WORKDIR /opt/project
COPY requirements.lock pyproject.toml README.md ./


# --- gpu: the Celery worker of queue `gpu` (docker-compose.yaml builds it with `target: gpu`) ---
FROM base AS gpu
# The lock without its torch line, plus the CUDA 13.0 build of the locked torch version, resolved
# together in one install. torch 2.13 publishes CUDA 12.6 and 13.0 builds (13.2 experimental);
# cu130's NCCL is nvidia-nccl-cu13, so it does not clash with the lock's nvidia-nccl-cu12 (xgboost's).
# pip adds the CUDA wheel's own pinned dependencies (nvidia-* libraries, triton), which the CPU lock
# does not list. The container toolkit mounts the driver; compute lets CUDA use it.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN grep -v '^torch==' requirements.lock > /tmp/requirements-gpu.lock \
    && pip install --extra-index-url https://download.pytorch.org/whl/cu130 -r /tmp/requirements-gpu.lock torch==2.13.0+cu130 \
    && rm /tmp/requirements-gpu.lock
COPY include ./include
COPY dags ./dags
COPY plugins ./plugins
RUN pip install --no-deps -e .
USER 50000
CMD ["python", "-m", "lifecycle.platform.cluster", "run", "worker-gpu"]


# --- cpu: every other project service; the last stage, so the default target ---
FROM base AS cpu
# Exactly the lock. torch's CPU build (the lock pins 2.13.0+cpu) lives on the PyTorch index, not PyPI.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock
COPY include ./include
COPY dags ./dags
COPY plugins ./plugins
RUN pip install --no-deps -e .

USER 50000
# docker-compose.yaml gives every service its own command; alone, the image serves the Airflow API.
CMD ["python", "-m", "lifecycle.platform.cluster", "run", "api-server"]
