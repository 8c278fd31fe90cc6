# The github-sync image: Apache Airflow 3.3.2 (Python 3.11) + this project, installed from uv.lock.
#
#   docker build -t github-sync:local .      (docker compose up --build does the same)
#
# The dependencies are exactly the lock's: `uv export --frozen` turns uv.lock into a
# requirements file with hashes (no dev/test extras), pip installs it with --require-hashes,
# then the project itself is installed without dependencies (already there). apache-airflow
# is pinned to 3.3.2 in pyproject.toml and the lock, i.e. the version of the base image, so
# the install never swaps the image's Airflow for another.

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

# --- Stage 1: the locked requirements ------------------------------------------------------
FROM ${AIRFLOW_IMAGE} AS requirements
# Same uv as the Makefile (UV_VERSION); only this stage has it.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# /tmp: writable by the image's airflow user (a WORKDIR would be root's).
COPY --chown=airflow:0 pyproject.toml uv.lock /tmp/github-sync/
# --frozen: fail rather than re-resolve when uv.lock does not match pyproject.toml.
RUN cd /tmp/github-sync \
    && uv export --frozen --no-dev --no-emit-project --format requirements-txt -o /tmp/requirements.txt

# --- Stage 2: the runtime image -------------------------------------------------------------
FROM ${AIRFLOW_IMAGE}
USER root
RUN mkdir -p /opt/github-sync /opt/airflow/config \
    && chown -R airflow:0 /opt/github-sync /opt/airflow/config
USER airflow

COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
# The image's pip installs into the airflow user's site (PIP_USER); --require-hashes: the lock's hashes.
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt

COPY --chown=airflow:0 pyproject.toml uv.lock README.md /opt/github-sync/
COPY --chown=airflow:0 plugins /opt/github-sync/plugins
COPY --chown=airflow:0 simulator /opt/github-sync/simulator
# The console scripts (github-sync, github-sync-relay) and the github_sync package; the
# simulator (github-sim, standard library only) is its own distribution, for the demo profile.
RUN pip install --no-cache-dir --no-deps /opt/github-sync /opt/github-sync/simulator

# DAGs and the Airflow plugin (status dashboard) where the compose file points
# AIRFLOW__CORE__DAGS_FOLDER / AIRFLOW__CORE__PLUGINS_FOLDER.
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
