"""docker-compose.yaml without a Docker engine: schema, commands and variables.

* The file validates against the Compose Specification's JSON schema (a vendored copy; see
  ``COMPOSE_SPEC_SOURCE.md``) after compose-style interpolation with ``.env.example``.
* Every command a service of our image runs exists: ``airflow`` subcommands parse with this
  Airflow's CLI parser (with the compose file's executor, so ``celery worker`` is there);
  ``github-sync``/``github-sync-relay``/``github-sim`` are console scripts of the distributions
  the image installs (``github-sync``, and ``github-sim``: the simulator is its own
  distribution) and their arguments parse with the script's own parser.
* Every variable the file sets is read by something: by our code (plugins/github_sync or
  dags) for services of our image, by the service's own shell command, by a file the
  service mounts from this repository, or (third-party images) by that image as documented.
  Every ``${VAR}`` the file references is listed in ``.env.example``.

The negative tests run the same checks on modified copies, to prove a broken file fails.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from github_sync.devtools.local_airflow import COMPONENTS
from tests.conftest import REPO_ROOT

HERE = Path(__file__).resolve().parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SCHEMA_FILE = HERE / "compose_spec.json"
# The distributions the image installs (see the Dockerfile): their console scripts are its commands.
DISTRIBUTIONS = ("github-sync", "github-sim")
CODE_DIRS = (REPO_ROOT / "plugins" / "github_sync", REPO_ROOT / "dags")
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}; "$${" is an escaped "$" (not compose's).
VARIABLE_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
# What a service's shell reads itself: "$${VAR}" in the file is "${VAR}" for the shell.
SHELL_REF = re.compile(r"\$\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# A variable the shell expands in an init script line (after compose turned "$$" into "$").
SHELL_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
# The official image's entrypoint runs `airflow <command>` unless the command is bash or python.
IMAGE_SHELLS = ("bash", "python")
DUMB_INIT = ["/usr/bin/dumb-init", "--"]
# Shell builtins/utilities an init script may use besides the product's commands.
SHELL_UTILITIES = frozenset({"set", "umask", "printf", "chown", "mkdir"})
# Variables documented by the images themselves (not read by our code).
IMAGE_VARIABLES: Mapping[str, frozenset[str]] = {
    # https://hub.docker.com/_/postgres (Environment Variables)
    "postgres": frozenset({"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}),
    # apache/airflow entrypoint docs, "Signal propagation": read by dumb-init.
    "airflow": frozenset({"DUMB_INIT_SETSID"}),
}


# -- loading ---------------------------------------------------------------------------------------
def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of an .env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def referenced_variables(text: str) -> set[str]:
    """Every ``${VAR}`` compose would interpolate in a compose file (values, not comments)."""
    return {
        match.group(1) for string in _strings(yaml.safe_load(text)) for match in VARIABLE_REF.finditer(string)
    }


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation, applied to the parsed file's strings (as compose does)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name)
        if operator in (":-", ":?") and not current:
            return default if operator == ":-" else ""
        if operator in ("-", "?") and current is None:
            return default if operator == "-" else ""
        return current or ""

    return VARIABLE_REF.sub(substitute, value).replace("$$", "$")


def load_compose(text: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file as compose sees it: YAML (merge keys resolved), then interpolated."""
    return interpolate(yaml.safe_load(text), env)


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA_FILE.read_text())
    # The schema names its draft "http://json-schema.org/draft/2019-09/schema#", which jsonschema
    # does not recognise (the canonical id is https://...): pick that draft's validator explicitly.
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


# -- what our code reads ---------------------------------------------------------------------------
def code_string_literals() -> set[str]:
    """Every string constant in plugins/github_sync and dags (environment names are constants)."""
    literals: set[str] = set()
    for directory in CODE_DIRS:
        for path in directory.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    literals.add(node.value)
    return literals


# -- commands --------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def uses_our_image(service: Mapping[str, Any]) -> bool:
    return "build" in service


def service_argvs(name: str, service: Mapping[str, Any]) -> Iterator[list[str]]:
    """The argv of every program a service of our image runs (init scripts: each line)."""
    entrypoint = _as_list(service.get("entrypoint"))
    command = _as_list(service.get("command"))
    if not entrypoint:
        # The image's /entrypoint: `airflow <command>` unless it is bash/python.
        if command and command[0] in IMAGE_SHELLS:
            entrypoint, command = [command[0]], command[1:]
        else:
            yield ["airflow", *command]
            return
    if entrypoint == DUMB_INIT:
        yield command
        return
    if Path(entrypoint[0]).name == "bash" and len(entrypoint) == 1 and command[:1] == ["-c"]:
        environment = service.get("environment") or {}
        for line in "\n".join(command[1:]).splitlines():
            # The shell expands the service's variables before the program parses its arguments.
            line = SHELL_VAR.sub(lambda m: str(environment.get(m.group(1) or m.group(2), "")), line)
            argv = shlex.split(line, comments=True)
            if argv and argv[0] == "exec":
                argv = argv[1:]
            if argv:
                yield argv
        return
    yield [*entrypoint, *command]


def console_scripts() -> dict[str, importlib.metadata.EntryPoint]:
    return {
        ep.name: ep
        for name in DISTRIBUTIONS
        for ep in importlib.metadata.distribution(name).entry_points
        if ep.group == "console_scripts"
    }


def script_parser(entry_point: importlib.metadata.EntryPoint) -> argparse.ArgumentParser:
    """The ``argparse`` parser of a console script (its module's ``build_parser``/``_parser``)."""
    module = importlib.import_module(entry_point.module)
    for name in ("build_parser", "_parser"):
        factory = getattr(module, name, None)
        if callable(factory):
            return factory()
    raise AssertionError(f"{entry_point.value}: no build_parser()/_parser() to check arguments with")


def parses(parser: argparse.ArgumentParser, args: list[str]) -> bool:
    try:
        parser.parse_args(args)
    except SystemExit as exc:
        return exc.code in (0, None)
    return True


AIRFLOW_PARSE_SCRIPT = """
import json, sys
from airflow.cli import cli_parser
bad = []
for argv in json.loads(sys.argv[1]):
    try:
        cli_parser.get_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            bad.append(argv)
print(json.dumps(bad))
"""


# (executor, argv) -> parses; importing Airflow costs seconds, the negative tests share the answers.
_AIRFLOW_PARSE_CACHE: dict[tuple[str, tuple[str, ...]], bool] = {}


def unparsable_airflow_commands(argvs: list[list[str]], executor: str) -> list[list[str]]:
    """The ``airflow`` argvs this Airflow's CLI parser rejects (in a subprocess: the executor
    decides which commands exist, e.g. ``celery`` only with the CeleryExecutor)."""
    unknown = sorted({tuple(a) for a in argvs if (executor, tuple(a)) not in _AIRFLOW_PARSE_CACHE})
    if unknown:
        env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": executor}
        result = subprocess.run(
            [sys.executable, "-c", AIRFLOW_PARSE_SCRIPT, json.dumps([list(a[1:]) for a in unknown])],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        rejected = {tuple(argv) for argv in json.loads(result.stdout.strip().splitlines()[-1])}
        for argv in unknown:
            _AIRFLOW_PARSE_CACHE[(executor, argv)] = argv[1:] not in rejected
    return [a for a in argvs if not _AIRFLOW_PARSE_CACHE[(executor, tuple(a))]]


# -- the checks ------------------------------------------------------------------------------------
def compose_problems(compose_text: str, env_example_text: str) -> list[str]:
    """Everything wrong with a compose file; empty when it is fine."""
    problems: list[str] = []
    env_example = parse_env_file(env_example_text)
    for variable in sorted(referenced_variables(compose_text) - set(env_example)):
        problems.append(f"${{{variable}}} is referenced but not listed in .env.example")

    document = load_compose(compose_text, env_example)
    problems += [f"schema: {error}" for error in schema_errors(document)]
    services: dict[str, Any] = document.get("services") or {}

    scripts = console_scripts()
    literals = code_string_literals()
    airflow_argvs: list[list[str]] = []
    executor = "LocalExecutor"
    raw_services = (yaml.safe_load(compose_text) or {}).get("services") or {}
    for name, service in services.items():
        for target in service.get("depends_on") or {}:
            if target not in services:
                problems.append(f"{name}: depends_on unknown service {target!r}")
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        executor = environment.get("AIRFLOW__CORE__EXECUTOR", executor)
        raw = raw_services.get(name) or {}
        own_shell = set(SHELL_REF.findall(json.dumps([raw.get("command"), raw.get("healthcheck")])))
        image = str(service.get("image", ""))
        if uses_our_image(service):
            for argv in service_argvs(name, service):
                program = argv[0]
                if program == "airflow":
                    airflow_argvs.append(argv)
                elif program in scripts:
                    if not parses(script_parser(scripts[program]), argv[1:]):
                        problems.append(f"{name}: `{shlex.join(argv)}` does not parse")
                elif program not in SHELL_UTILITIES:
                    problems.append(
                        f"{name}: command {program!r} is neither airflow nor a console script of "
                        + " or ".join(DISTRIBUTIONS)
                    )
            known = IMAGE_VARIABLES["airflow"]
            for variable in environment:
                if variable.startswith("AIRFLOW__") or variable in known or variable in own_shell:
                    continue
                if variable not in literals:
                    problems.append(
                        f"{name}: sets {variable}, which nothing in plugins/github_sync or dags reads"
                    )
        else:
            image_name = image.split(":")[0].rsplit("/", 1)[-1]
            mounted = " ".join(
                (REPO_ROOT / v.split(":")[0]).read_text()
                for v in service.get("volumes") or []
                if isinstance(v, str) and v.startswith("./") and (REPO_ROOT / v.split(":")[0]).is_file()
            )
            for variable in environment:
                if variable in IMAGE_VARIABLES.get(image_name, ()) or variable in own_shell:
                    continue
                if not re.search(rf"\b{re.escape(variable)}\b", mounted):
                    problems.append(
                        f"{name}: sets {variable}, which neither {image} nor its mounted files read"
                    )
    for argv in unparsable_airflow_commands(airflow_argvs, executor):
        problems.append(f"airflow command `{shlex.join(argv)}` does not exist or does not parse")
    return problems


# -- tests -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def env_example_text() -> str:
    return ENV_EXAMPLE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str, env_example_text: str) -> dict[str, Any]:
    return load_compose(compose_text, parse_env_file(env_example_text))


def test_compose_file_has_no_problems(compose_text: str, env_example_text: str) -> None:
    assert compose_problems(compose_text, env_example_text) == []


def test_compose_services_follow_the_official_layout(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "github-sync-relay", "github-sim",
    }  # fmt: skip
    assert set(services) == expected
    # The same Airflow components local_airflow starts (make run, the e2e tests), plus the workers.
    commands = {" ".join(_as_list(s.get("command"))) for s in services.values() if "entrypoint" not in s}
    assert set(COMPONENTS) | {"celery worker"} <= commands
    for name, service in services.items():
        if name != "airflow-init":
            assert "healthcheck" in service, f"{name} has no health check"
        conditions = {target: dep["condition"] for target, dep in (service.get("depends_on") or {}).items()}
        if name.startswith("airflow-") and name != "airflow-init":
            assert conditions.get("airflow-init") == "service_completed_successfully", name
            assert conditions.get("postgres") == "service_healthy", name
    # Scalable workers: nothing that would clash between replicas.
    assert not {"container_name", "ports", "hostname"} & set(services["airflow-worker"])
    assert services["github-sim"]["profiles"] == ["demo"]
    assert "image" in services["airflow-init"] and "build" in services["airflow-init"]


def test_env_example_lists_exactly_the_referenced_variables(compose_text: str, env_example_text: str) -> None:
    assert set(parse_env_file(env_example_text)) == referenced_variables(compose_text)


def _modified(text: str, old: str, new: str) -> str:
    assert old in text, f"the compose file no longer contains {old!r}; update the negative test"
    return text.replace(old, new, 1)


BROKEN_COPIES = {
    "airflow subcommand": (
        "command: scheduler\n",
        "command: schedulerr\n",
        "airflow command `airflow schedulerr` does not exist",
    ),
    "airflow subcommand argument": (
        "command: celery worker\n",
        "command: celery worker --no-such-option\n",
        "airflow command `airflow celery worker --no-such-option`",
    ),
    "console script": (
        'command: ["github-sync-relay"]',
        'command: ["github-sync-relays"]',
        "command 'github-sync-relays' is neither airflow nor a console script",
    ),
    "console script subcommand": (
        "        github-sync migrate\n",
        "        github-sync migrat\n",
        "`github-sync migrat` does not parse",
    ),
    "unknown variable": (
        '      DUMB_INIT_SETSID: "0"\n',
        '      DUMB_INIT_SETSID: "0"\n      GITHUB_SYNC_WORKER_MODE: fast\n',
        "airflow-worker: sets GITHUB_SYNC_WORKER_MODE, which nothing",
    ),
    "variable not in .env.example": (
        "AIRFLOW__CELERY__BROKER_URL: redis://:@redis:6379/0",
        "AIRFLOW__CELERY__BROKER_URL: redis://:${REDIS_PASSWORD}@redis:6379/0",
        "${REDIS_PASSWORD} is referenced but not listed in .env.example",
    ),
    "postgres variable nothing reads": (
        "      POSTGRES_DB: airflow\n",
        "      POSTGRES_DB: airflow\n      POSTGRES_EXTRA_DATABASES: metrics\n",
        "postgres: sets POSTGRES_EXTRA_DATABASES",
    ),
    "schema": (
        "        condition: service_completed_successfully\n",
        "        condition: service_done\n",
        "schema: ",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_COPIES))
def test_a_broken_copy_fails(case: str, compose_text: str, env_example_text: str, tmp_path: Path) -> None:
    old, new, expected = BROKEN_COPIES[case]
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(_modified(compose_text, old, new))
    problems = compose_problems(broken.read_text(), env_example_text)
    assert any(expected in problem for problem in problems), problems
