"""The deployment files say what the code expects: the commands the CLI takes, the settings
config.py reads, the engine's health route, and no secrets. Docker does not run here, so
these are text checks (the YAML is not parsed: PyYAML is not a dependency)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from ocean_provider.cli import build_parser
from ocean_provider.engine.app import OPERATOR_PREFIX

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = (ROOT / "compose.yaml").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
CONFIG_SOURCE = (ROOT / "ocean_provider" / "config.py").read_text()
PRIVATE_KEY = re.compile(r"0x[0-9a-fA-F]{64}")


def stage(name: str) -> str:
    """The Dockerfile's lines from ``FROM ... AS name`` to the next FROM."""
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)
    assert match, f"no stage {name}"
    return match.group(1)


def service(name: str) -> str:
    """compose.yaml's block for one service (up to the next service or top-level key)."""
    match = re.search(rf"^  {name}:\n(.*?)(?=^  \S|^\S|\Z)", COMPOSE, re.M | re.S)
    assert match, f"no service {name}"
    return match.group(1)


def exec_form(block: str, instruction: str) -> list[str]:
    match = re.search(rf"^{instruction} (\[.*\])$", block, re.M)
    assert match, f"no {instruction} in exec form"
    return list(json.loads(match.group(1)))


@pytest.mark.parametrize(
    ("target", "command", "port"),
    [("provider", "serve", 8030), ("engine", "engine", 8050)],
)
def test_each_image_runs_its_cli_command_on_its_port(target: str, command: str, port: int) -> None:
    block = stage(target)
    argv = exec_form(block, "CMD")
    assert exec_form(block, "ENTRYPOINT") == ["ocean-provider"]
    args = build_parser().parse_args(argv)  # the CLI takes exactly these arguments
    assert args.command == command
    assert args.bind == f"0.0.0.0:{port}"
    assert f"EXPOSE {port}" in block


def test_the_provider_runs_unprivileged_and_the_engine_as_root() -> None:
    assert re.search(r"^USER 10001:10001$", stage("provider"), re.M)
    assert "USER" not in stage("engine")  # bwrap is started as root; jobs get their own uid
    # the default target (the last stage) is the Provider
    assert list(re.finditer(r"^FROM .* AS (\w+)$", DOCKERFILE, re.M))[-1].group(1) == "provider"


@pytest.mark.parametrize(
    ("target", "url"),
    [
        ("provider", "http://127.0.0.1:8030/"),
        ("engine", f"http://127.0.0.1:8050{OPERATOR_PREFIX}/health"),
    ],
)
def test_health_checks_call_a_real_route(target: str, url: str) -> None:
    check = re.search(r"^HEALTHCHECK .*\n\s+CMD (\[.*\])$", stage(target), re.M)
    assert check, "no HEALTHCHECK"
    command = json.loads(check.group(1))
    assert command[:2] == ["python", "-c"] and repr(url) in command[2]


def test_the_engine_image_has_what_the_sandbox_needs() -> None:
    assert re.search(r"apt-get install .*bubblewrap libseccomp2", stage("engine"))


def test_no_secret_is_baked_into_an_image() -> None:
    assert not PRIVATE_KEY.search(DOCKERFILE)
    assert not re.search(r"^(ENV|ARG) .*(PRIVATE_KEY|PASSWORD|SECRET)", DOCKERFILE, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "*.env", ".git", ".venv", "var", ".local"} <= set(ignored)


def test_compose_runs_provider_engine_and_redis_with_volumes() -> None:
    assert '"127.0.0.1:8030:8030"' in service("provider")
    assert "ports:" not in service("engine")  # only the Provider calls it
    assert "provider-data:/var/lib/ocean-provider" in service("provider")
    assert "engine-data:/var/lib/ocean-engine" in service("engine")
    assert "./engine-environments.json:/etc/ocean-engine/environments.json:ro" in COMPOSE
    assert "--appendonly" in service("redis")  # nonces must survive a restart
    for volume in ("provider-data", "engine-data", "redis-data"):
        assert re.search(rf"^  {volume}:$", COMPOSE, re.M)


def test_the_engine_service_has_the_sandbox_privileges() -> None:
    engine = service("engine")
    assert "- SYS_ADMIN" in engine
    for option in ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"):
        assert f"- {option}" in engine
    assert re.search(r"^    networks: \[compute\]$", engine, re.M)  # a job must not reach Redis


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        (
            "provider",
            {
                "NETWORK_URL",
                "CHAIN_ID",
                "PROVIDER_PRIVATE_KEY",
                "PROVIDER_URL",
                "OPERATOR_SERVICE_URL",
                "ADDRESS_FILE",
                "DDO_SOURCE",
                "REDIS_CONNECTION",
                "STORAGE_PATH",
            },
        ),
        ("engine", {"ALLOWED_PROVIDERS", "ENVIRONMENTS_FILE", "ENGINE_STORAGE"}),
    ],
)
def test_compose_sets_settings_config_reads(name: str, settings: set[str]) -> None:
    given = set(re.findall(r"^      ([A-Z_]+):", service(name), re.M))
    assert settings <= given
    for setting in given:
        assert f'"{setting}"' in CONFIG_SOURCE, f"config.py never reads {setting}"
    assert "OPERATOR_SERVICE_URL: ${OPERATOR_SERVICE_URL:-http://engine:8050}" in COMPOSE


def test_the_key_reaches_only_the_provider() -> None:
    assert "PROVIDER_PRIVATE_KEY" in service("provider")
    assert "PROVIDER_PRIVATE_KEY" not in service("engine")


def test_the_env_example_holds_placeholders_only() -> None:
    assert not PRIVATE_KEY.search(ENV_EXAMPLE)
    values = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.splitlines() if line and line[0] != "#"
    )
    assert "REPLACE" in values["PROVIDER_PRIVATE_KEY"]
    allowed = json.loads(shlex.split(values["ENGINE_ALLOWED_PROVIDERS"])[0])
    assert isinstance(allowed, list)
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE))
    assert required and required <= set(values)
