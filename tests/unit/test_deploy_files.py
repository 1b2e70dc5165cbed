"""Parse-checks of the deployment files (no Docker engine in CI, so nothing here runs them)."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
SCALING = DEPLOY / "SCALING.md"
DOCKERIGNORE = ROOT / ".dockerignore"

SUBCOMMANDS = {"commands", "queries", "media", "worker", "up", "replay", "init"}
REQUIRED_ENV = ("CHORUS_KAFKA", "CHORUS_DATABASE_URL", "CHORUS_SECRET")
HTTP_PORTS = {"commands": 8000, "queries": 8001, "media": 8002}
ROLES = {"init": "init", "commands": "commands", "queries": "queries"}
ROLES |= {"media": "media", "worker": "worker"}


# --- compose.yaml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict), "compose.yaml is not a mapping"
    found = loaded.get("services")
    assert isinstance(found, dict) and found, "compose.yaml has no services"
    return found


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list) and command, f"no command: {service!r}"
    return [str(word) for word in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    assert isinstance(env, dict), f"environment is neither a list nor a mapping: {env!r}"
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            target = str(entry).split("/")[0].rsplit(":", 1)[-1]
            ports.add(int(target))
    return ports


def test_compose_has_every_role(services: dict[str, dict[str, Any]]) -> None:
    assert set(ROLES) <= set(services), f"missing services: {set(ROLES) - set(services)}"


def test_every_service_runs_a_chorus_subcommand(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        words = _command(service)
        assert words[0] in SUBCOMMANDS, f"{name}: {words[0]!r} is not a chorus subcommand"
        assert words[0] != "up", f"{name}: `chorus up` starts its own broker, not for deployment"
        if name in ROLES:
            assert words[0] == ROLES[name], f"{name} runs `chorus {words[0]}`"


def test_required_variables_are_required_references(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        env = _environment(service)
        for var in REQUIRED_ENV:
            assert var in env, f"{name}: {var} is not passed"
            pattern = rf"\$\{{{var}:\?[^}}]+\}}"
            assert re.fullmatch(pattern, env[var]), (
                f"{name}: {var} must be ${{{var}:?message}}, not {env[var]!r}"
            )


def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    sensitive = re.compile(r"SECRET|PASSWORD|TOKEN(?!_TTL)|DATABASE_URL|KAFKA$")
    for name, service in services.items():
        for key, value in _environment(service).items():
            if sensitive.search(key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}", value), (
                    f"{name}: {key} has a literal value"
                )
    text = COMPOSE.read_text()
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "credentials in a URL"


def test_http_services_publish_and_check_health(services: dict[str, dict[str, Any]]) -> None:
    for name, port in HTTP_PORTS.items():
        service = services[name]
        assert port in _container_ports(service), f"{name} does not publish {port}"
        check = service.get("healthcheck")
        assert isinstance(check, dict) and not check.get("disable"), f"{name}: no healthcheck"
        test = check["test"]
        words = test if isinstance(test, list) else ["CMD-SHELL", test]
        assert words[0] in {"CMD", "CMD-SHELL"}
        joined = " ".join(str(word) for word in words[1:])
        assert "python" in joined and "urllib" in joined, f"{name}: not a python urllib check"
        assert f":{port}/healthz" in joined, f"{name}: healthcheck misses :{port}/healthz"
        assert not re.search(r"\b(curl|wget)\b", joined), f"{name}: the image has no curl"


def test_long_running_services_restart_and_wait_for_init(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if _command(service)[0] == "init":
            assert str(service.get("restart", "no")) == "no", "init is one-shot"
            assert "depends_on" not in service
            continue
        assert service.get("restart") == "unless-stopped", f"{name}: restart policy"
        depends = service.get("depends_on")
        assert isinstance(depends, dict), f"{name}: must depend on init with a condition"
        assert depends.get("init", {}).get("condition") == "service_completed_successfully"


def test_services_use_the_image_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        build = service.get("build")
        assert isinstance(build, dict), f"{name}: no build"
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE


# --- Dockerfile -----------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.strip().partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends in a continuation line"
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def _exec_form(keyword: str) -> list[str]:
    found = [args for kw, args in _final_stage() if kw == keyword]
    assert found, f"no {keyword} in the final stage"
    value = json.loads(found[-1])
    assert isinstance(value, list)
    return value


def test_dockerfile_base_image() -> None:
    froms = [args.split()[0] for keyword, args in _instructions() if keyword == "FROM"]
    assert froms and all(image == "python:3.11-slim" for image in froms), froms
    assert _final_stage()[0][1].split()[0] == "python:3.11-slim"


def test_dockerfile_entrypoint_and_default_command() -> None:
    assert _exec_form("ENTRYPOINT") == ["chorus"]
    assert _exec_form("CMD") == ["commands"]


def test_dockerfile_runs_as_non_root() -> None:
    users = [args for keyword, args in _final_stage() if keyword == "USER"]
    assert users, "the final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0", ""}, f"runs as {users[-1]!r}"


def test_dockerfile_installs_with_constraints() -> None:
    installs: list[list[str]] = []
    for keyword, args in _instructions():
        if keyword != "RUN":
            continue
        lexer = shlex.shlex(args, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"&&", "||", ";", "|", ">", "<"}:
                if "pip" in words and "install" in words:
                    installs.append(words)
                words = []
            else:
                words.append(token)
    assert installs, "no pip install"
    for words in installs:
        pairs = set(itertools.pairwise(words))
        assert ("-c", "constraints.txt") in pairs, f"unconstrained install: {words}"
    assert any(words[-1] == "." for words in installs), "the project itself is not installed"
    copies = " ".join(args for keyword, args in _instructions() if keyword == "COPY")
    assert "constraints.txt" in copies or re.search(r"(^|\s)\.\s", copies + " ")


def test_dockerfile_exposes_http_ports_and_bakes_no_secret() -> None:
    exposed = {
        int(port.split("/")[0])
        for keyword, args in _instructions()
        if keyword == "EXPOSE"
        for port in args.split()
    }
    assert set(HTTP_PORTS.values()) <= exposed
    for keyword, args in _instructions():
        if keyword in {"ENV", "ARG"}:
            for var in REQUIRED_ENV:
                assert var not in args, f"{keyword} {var} bakes a deployment value in"


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git"} <= patterns
    assert any(p.startswith(".env") for p in patterns), ".env files must stay out of the image"
    needed = {"pyproject.toml", "constraints.txt", "commands", "queries", "web", "db", "config"}
    needed |= {"adapters", "auth", "cli", "replay", "devstack"}
    needed |= {"media", "streams", "schemas", "*", "."}
    assert not patterns & needed, f"excludes what the build needs: {patterns & needed}"


# --- SCALING.md -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "needle",
    [
        "commands",
        "queries",
        "media",
        "worker",
        "Last-Event-ID",
        "chorus.commands",
        "chorus.events",
        "retention.ms=-1",
        "/metrics",
        "lag",
        "not run in CI",
        *REQUIRED_ENV,
    ],
)
def test_scaling_guide_mentions(needle: str) -> None:
    assert needle in SCALING.read_text()


def test_scaling_guide_has_a_section_per_tier() -> None:
    text = SCALING.read_text()
    for tier in ("commands", "queries", "worker", "media"):
        assert re.search(rf"^- \*\*{tier}\*\*", text, re.MULTILINE), f"no bullet for {tier}"
