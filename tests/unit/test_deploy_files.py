"""Parse-checks of the deployment files (no Docker engine in CI, so nothing here runs them)."""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.kafka import _new_topics
from cli.main import build_parser
from config.settings import Settings
from schemas.topics import Topics

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
SCALING = DEPLOY / "SCALING.md"
DOCKERIGNORE = ROOT / ".dockerignore"

ROLES = ("init", "commands", "queries", "media", "worker")
SERVING = ("commands", "queries", "media", "worker")
SETTING_NAME = re.compile(r"\bCHORUS_[A-Z0-9_*]*[A-Z0-9*]")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    """The `chorus` command line's subcommands, each with its parser."""
    found = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(found) == 1
    return dict(found[0].choices)


def default_port(role: str) -> int:
    """The port `chorus <role>` listens on when given none: its option's default, or the
    setting the service falls back to (as cli/main.py does)."""
    port = build_parser().parse_args([role]).port
    return int(port or getattr(Settings.from_env({}), f"{role}_port"))


def _setting_changed_by(name: str) -> list[str]:
    """The Settings fields that setting `name` in the environment changes."""
    base = Settings.from_env({})
    changed = Settings.from_env({name: "7"})
    # `environment` keeps the whole environment read, so every variable changes it.
    fields = [f for f in dataclasses.fields(Settings) if f.name != "environment"]
    return [f.name for f in fields if getattr(base, f.name) != getattr(changed, f.name)]


def _required_in_guide() -> set[str]:
    """The variables SCALING.md's environment table marks as required."""
    rows = re.findall(r"^\| `(CHORUS_[A-Z_]+)` \| yes \|", SCALING.read_text(), re.MULTILINE)
    assert rows, "the guide's environment table marks no variable as required"
    return set(rows)


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
    subcommands = set(_subparsers())
    for name, service in services.items():
        words = _command(service)
        assert words[0] in subcommands, f"{name}: {words[0]!r} is not a chorus subcommand"
        assert words[0] != "up", f"{name}: `chorus up` starts its own broker, not for deployment"
        if name in ROLES:
            assert words[0] == name, f"{name} runs `chorus {words[0]}`"


def test_required_variables_are_required_references(
    services: dict[str, dict[str, Any]],
) -> None:
    required = _required_in_guide()
    for name, service in services.items():
        env = _environment(service)
        for var in required:
            assert var in env, f"{name}: {var} is not passed"
            pattern = rf"\$\{{{var}:\?[^}}]+\}}"
            assert re.fullmatch(pattern, env[var]), (
                f"{name}: {var} must be ${{{var}:?message}}, not {env[var]!r}"
            )
    refused = set(re.findall(r"\$\{(CHORUS_[A-Z0-9_]+):\?", COMPOSE.read_text()))
    assert refused <= required, f"compose requires {refused - required}; the guide says optional"


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


def _health_url(service: dict[str, Any]) -> tuple[int, str]:
    """(port, path) of the URL a service's healthcheck asks for, with python's urllib."""
    check = service.get("healthcheck")
    assert isinstance(check, dict) and not check.get("disable"), "no healthcheck"
    test = check["test"]
    words = test if isinstance(test, list) else ["CMD-SHELL", test]
    assert words[0] in {"CMD", "CMD-SHELL"}
    joined = " ".join(str(word) for word in words[1:])
    assert "python" in joined and "urllib" in joined, "not a python urllib check"
    assert not re.search(r"\b(curl|wget)\b", joined), "the image has no curl"
    urls = re.findall(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/]*)", joined)
    assert len(urls) == 1, f"not one local URL in {joined!r}"
    return int(urls[0][0]), urls[0][1]


@pytest.mark.parametrize("role", SERVING)
def test_every_service_checks_its_own_healthz(
    services: dict[str, dict[str, Any]], role: str
) -> None:
    assert _health_url(services[role]) == (default_port(role), "/healthz")


@pytest.mark.parametrize("role", SERVING)
def test_published_ports_are_the_services_own(
    services: dict[str, dict[str, Any]], role: str
) -> None:
    published = _container_ports(services[role])
    assert published <= {default_port(role)}, f"{role} publishes {published}"
    if role != "worker":  # the worker's port serves health and metrics, in-network only
        assert published, f"{role} publishes no port"


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


def test_dockerfile_exposes_every_services_port_and_bakes_no_secret() -> None:
    exposed = {
        int(port.split("/")[0])
        for keyword, args in _instructions()
        if keyword == "EXPOSE"
        for port in args.split()
    }
    assert exposed == {default_port(role) for role in SERVING}
    for keyword, args in _instructions():
        if keyword in {"ENV", "ARG"}:
            for var in _required_in_guide():
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


# --- what the files name, against the code -------------------------------------------------


def _compose_knobs() -> set[str]:
    """Variables compose itself substitutes that no service's environment passes on."""
    text = COMPOSE.read_text()
    substituted = set(re.findall(r"\$\{(CHORUS_[A-Z0-9_]+)", text))
    loaded = yaml.safe_load(text)
    passed = {key for service in loaded["services"].values() for key in _environment(service)}
    return substituted - passed


@pytest.mark.parametrize("path", [DOCKERFILE, COMPOSE, SCALING], ids=lambda p: p.name)
def test_every_chorus_variable_named_is_a_setting_or_a_compose_knob(path: Path) -> None:
    knobs = _compose_knobs()
    for name in set(SETTING_NAME.findall(path.read_text())):
        if "*" in name:
            assert fnmatch.filter(knobs, name), f"{path.name}: {name} matches no compose variable"
        elif name not in knobs:
            assert _setting_changed_by(name), f"{path.name}: config/settings.py ignores {name}"


def _chorus_commands(text: str) -> list[list[str]]:
    """The words after `chorus` of every `chorus ...` command quoted in backticks."""
    return [span.split()[1:] for span in re.findall(r"`(chorus [^`]+)`", text)]


@pytest.mark.parametrize("path", [DOCKERFILE, SCALING], ids=lambda p: p.name)
def test_every_subcommand_and_option_named_exists(path: Path) -> None:
    text = path.read_text()
    named = _chorus_commands(text)
    # The Dockerfile's usage line: `docker run chorus a | b | c`.
    for line in re.findall(r"docker run chorus ([a-z| ]+)", text):
        named += [[word] for word in line.replace("|", " ").split()]
    assert named, f"{path.name} names no chorus subcommand"
    subparsers = _subparsers()
    for words in named:
        assert words[0] in subparsers, f"{path.name}: no subcommand `chorus {words[0]}`"
        options = subparsers[words[0]]._option_string_actions
        for word in words[1:]:
            if word.startswith("-"):
                assert word in options, f"{path.name}: `chorus {words[0]}` has no {word}"
    assert _exec_form("CMD")[0] in subparsers


def test_the_guide_gives_each_service_its_port() -> None:
    text = SCALING.read_text()
    for role in ROLES:
        bullet = re.search(rf"^- \*\*{role}\*\*(?: \(([^)]*)\))?", text, re.MULTILINE)
        assert bullet, f"the guide does not say how {role} runs"
        ports = [int(port) for port in re.findall(r"\b\d{4}\b", bullet.group(1) or "")]
        if role in SERVING:
            assert ports[:1] == [default_port(role)], f"{role}: the guide says {ports}"
        else:
            assert not ports, f"{role} serves no port, the guide says {ports}"


def test_the_guides_defaults_are_the_settings_defaults() -> None:
    defaults = Settings.from_env({})
    rows = re.findall(r"^\| (`CHORUS_.+?) \| (.+?) \| (.+?) \|$", SCALING.read_text(), re.MULTILINE)
    checked = 0
    for names, required, meaning in rows:
        variables = re.findall(r"`(CHORUS_[A-Z_]+)`", names)
        given = re.fullmatch(r"no \((.+)\)", required)
        if given:  # one variable, its default in brackets
            (field,) = _setting_changed_by(variables[0])
            value = getattr(defaults, field)
            value = value.prefix if isinstance(value, Topics) else value
            assert given.group(1).strip("`") == str(value), f"{variables[0]} defaults to {value}"
            checked += 1
        elif re.fullmatch(r"[\d /]+", meaning):  # several variables, their defaults in turn
            numbers = [int(n) for n in meaning.split("/")]
            fields = [_setting_changed_by(name) for name in variables]
            assert [getattr(defaults, f) for (f,) in fields] == numbers, names
            checked += 1
    assert checked >= 3, "the guide's table gives no defaults to check"


def test_the_guides_topics_and_retention_are_what_init_creates() -> None:
    created = {topic.topic: topic.config for topic in _new_topics(Topics(), 12)}
    text = SCALING.read_text()
    rows = re.findall(r"^\| `(\w+\.[\w.-]+)` \| [^|]+ \| (.+) \|$", text, re.MULTILINE)
    assert {name for name, _ in rows} == set(created), "the guide's topics are not init's"
    said = {name: re.search(r"retention\.ms=(-?\d+)", retention) for name, retention in rows}
    claims = {name: found.group(1) for name, found in said.items() if found}
    assert claims, "the guide states no topic's retention"
    for name, retention_ms in claims.items():
        assert created[name]["retention.ms"] == retention_ms, name


def test_the_files_the_guide_names_exist() -> None:
    text = SCALING.read_text() + DOCKERFILE.read_text() + COMPOSE.read_text()
    named = set(re.findall(r"\b((?:deploy|config|tests|infra|adapters)/[\w/]+(?:\.\w+)?)", text))
    named.discard("deploy/.env")
    assert named, "no file named"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"named but missing: {missing}"


# --- prometheus.yml and grafana-dashboard.json ----------------------------------------------

PROMETHEUS = DEPLOY / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
SCRAPED = (*SERVING, "admin")
METRIC_NAME = re.compile(r"\b(chorus_[a-z0-9_]+)")
#: The code's metric definitions: a prometheus_client constructor and the metric's name.
DEFINED = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily)\(\s*"
    r"\"(chorus_[a-z0-9_]+)\"",
)
#: The series each kind of metric exports (prometheus_client's naming).
SUFFIXES = {
    "Counter": ("_total",),
    "CounterMetricFamily": ("_total",),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count"),
}
EXPORTERS = ("admin", "commands", "queries", "media", "streams", "web", "client")
#: What the page's panels show (issue 13); the dashboard has one panel for each.
PANELS = (
    "calls started",
    "active calls",
    "join time",
    "command rate",
    "decided latency",
    "decider lag",
    "sse clients",
    "rooms per media node",
    "503",
    "restarts",
)


def exported_series() -> set[str]:
    """Every series the services' /metrics can carry, from the metrics their code defines."""
    series: set[str] = set()
    for package in EXPORTERS:
        for path in (ROOT / package).rglob("*.py"):
            for kind, name in DEFINED.findall(path.read_text()):
                series |= {name + suffix for suffix in SUFFIXES[kind]}
    return series


def test_the_metrics_the_code_defines_are_found() -> None:
    series = exported_series()
    # One of each kind, from four services: the scan finds what the code defines.
    expected = {"chorus_http_requests_total", "chorus_media_rooms", "chorus_live_clients"}
    expected |= {"chorus_decide_seconds_bucket", "chorus_decider_lag"}
    assert expected <= series


def _jobs() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load(PROMETHEUS.read_text())
    assert isinstance(loaded, dict) and isinstance(loaded.get("scrape_configs"), list)
    return {job["job_name"]: job for job in loaded["scrape_configs"]}


def test_prometheus_scrapes_every_service_on_its_own_port() -> None:
    jobs = _jobs()
    assert set(jobs) == set(SCRAPED)
    for role, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics", role
        ports = [sd["port"] for sd in job.get("dns_sd_configs", [])]
        ports += [
            int(target.rsplit(":", 1)[1])
            for static in job.get("static_configs", [])
            for target in static["targets"]
        ]
        assert ports == [default_port(role)], f"{role} is scraped at {ports}"
        # A compose service is found under its own name (every copy of a scaled one).
        if role in SERVING:
            assert [sd["names"] for sd in job["dns_sd_configs"]] == [[role]]


def _dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict) and loaded.get("panels"), "the dashboard has no panels"
    return loaded


def test_every_dashboard_query_reads_a_series_a_service_exports() -> None:
    series = exported_series()
    for panel in _dashboard()["panels"]:
        exprs = [target["expr"] for target in panel.get("targets", [])]
        assert exprs, f"panel {panel['title']!r} has no query"
        for expr in exprs:
            named = METRIC_NAME.findall(expr)
            assert named, f"{panel['title']!r}: {expr!r} reads no Chorus metric"
            unknown = [name for name in named if name not in series]
            assert not unknown, f"{panel['title']!r} reads {unknown}, which nothing exports"
            assert expr.count("(") == expr.count(")"), f"unbalanced: {expr!r}"


def test_the_dashboard_has_the_panels_that_matter_and_imports_anywhere() -> None:
    dashboard = _dashboard()
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    missing = [panel for panel in PANELS if panel not in titles]
    assert not missing, f"no panel for {missing}"
    assert [source["name"] for source in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
