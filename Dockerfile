# The one project image (first draft; the scale-out issue makes it the base of every service).
# Installs exactly the committed lock, then the project library; DAGs, plugins and the feature
# repo are part of the image so scheduler, workers and the model service run the same code.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DO_NOT_TRACK=1 FEAST_USAGE=False MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true \
    SCARF_ANALYTICS=false AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/project/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/project/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

RUN apt-get update && apt-get install -y --no-install-recommends git build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/project
COPY requirements.lock pyproject.toml README.md ./
# torch's CPU build (the lock pins 2.13.0+cpu) lives on the PyTorch index, not PyPI.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock
COPY include ./include
COPY dags ./dags
COPY plugins ./plugins
COPY feature_repo ./feature_repo
RUN pip install --no-cache-dir --no-deps -e .

USER 50000
CMD ["airflow", "standalone"]
