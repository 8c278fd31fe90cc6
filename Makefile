# The two commands of the README's quick start: `make run` and `make test`.
UV_VERSION ?= 0.13.9
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test install lint format bench clean

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	uv sync --frozen --extra test
	@touch $@

install: $(VENV)/.installed

## Run the product locally: migrations, Airflow 3.3 (LocalExecutor), connections, pool, full sync.
run: install
	$(PY) -m github_sync.devtools.local_run

## Run the whole test suite (lint and type check included) against the real PostgreSQL.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Benchmarks (tests/benchmarks/README.md); `make bench BENCH_ARGS=--scale` runs the scale benchmark.
bench: install
	$(PY) -m tests.benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .airflow
