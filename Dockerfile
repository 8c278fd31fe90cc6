# The github-sync image: Apache Airflow 3.3.2 (Python 3.11) + this project, installed from uv.lock.
#
#   docker build -t github-sync:local .      (docker compose up --build does the same)
#
# The dependencies are exactly the lock's: `uv export --frozen` turns uv.lock into a
# requirements file with hashes (no dev/test extras), pip installs it with --require-hashes,
# then the project itself is installed without dependencies (already there). apache-airflow
# is pinned to 3.3.2 in pyproject.toml and the lock, i.e. the version of the base image.

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

# --- Stage 1: the locked requirements ------------------------------------------------------
FROM ${AIRFLOW_IMAGE} AS requirements
# Same uv as the Makefile (UV_VERSION); only used in this stage.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /tmp/github-sync
COPY --chown=airflow:0 pyproject.toml uv.lock ./
# --frozen: fail rather than re-resolve when uv.lock does not match pyproject.toml.
RUN uv export --frozen --no-dev --no-emit-project --format requirements-txt -o requirements.txt

# --- Stage 2: the runtime image -------------------------------------------------------------
FROM ${AIRFLOW_IMAGE}
COPY --from=requirements /tmp/github-sync/requirements.txt /tmp/github-sync/requirements.txt
# The image's pip installs into the airflow user's site (PIP_USER); --require-hashes: the lock's hashes.
RUN pip install --no-cache-dir --require-hashes -r /tmp/github-sync/requirements.txt

COPY --chown=airflow:0 pyproject.toml uv.lock README.md /opt/github-sync/
COPY --chown=airflow:0 plugins /opt/github-sync/plugins
# The console scripts (github-sync, github-sync-relay, github-sim) and the github_sync package.
RUN pip install --no-cache-dir --no-deps /opt/github-sync

# DAGs and the Airflow plugin (the status dashboard) where the compose file points
# AIRFLOW__CORE__DAGS_FOLDER / PLUGINS_FOLDER.
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
RUN mkdir -p /opt/airflow/config
