"""deploy/Dockerfile, read as text (no Docker needed): base images pinned by digest, one
target per service installing only that service's package, runtime stages without build
tools and not running as root; and, from uv.lock, what each service's package brings in."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"
PINNED = re.compile(r"^[a-z0-9./_-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")
# Dev tools and CVAT's stack, for the tests only: never in an image.
DEV_ONLY = frozenset({"cvat-sdk", "cvat-cli", "datumaro", "pytest", "hypothesis", "moto"})


@dataclass
class Stage:
    """One FROM of the Dockerfile and its instructions (keyword, arguments)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        """The arguments of this stage's `keyword` instructions, in order."""
        return [args for key, args in self.instructions if key == keyword]


def _logical_lines(text: str) -> Iterator[str]:
    line = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            line += stripped[:-1] + " "
            continue
        yield line + stripped
        line = ""


def parse_dockerfile(text: str) -> dict[str, Stage]:
    """The stages by name (an unnamed stage by its index), in order."""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            base = next(word for word in words if not word.startswith("--"))
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else str(len(stages))
            current = stages[name] = Stage(base, name)
        else:
            assert current is not None, f"{keyword} before the first FROM"
            current.instructions.append((keyword, args.strip()))
    return stages


STAGES = parse_dockerfile(DOCKERFILE.read_text())


def chain(name: str) -> list[Stage]:
    """The stage `name` and the stages it is built on, nearest first."""
    stages = [STAGES[name]]
    while stages[-1].base in STAGES:
        stages.append(STAGES[stages[-1].base])
    return stages


def services() -> list[str]:
    """The services of the workspace, from services/*/pyproject.toml."""
    names = []
    for path in sorted((ROOT / "services").glob("*/pyproject.toml")):
        project = tomllib.loads(path.read_text())["project"]["name"]
        assert project == f"tessera-{path.parent.name}"
        names.append(path.parent.name)
    return names


SERVICES = services()


def test_every_base_image_is_pinned_by_digest() -> None:
    external = [stage.base for stage in STAGES.values() if stage.base not in STAGES]
    assert external, "no FROM of an image"
    for base in external:
        assert PINNED.match(base), f"FROM {base} is not pinned by a sha256 digest"
    # COPY --from an image rather than a stage would bypass the pins.
    for stage in STAGES.values():
        for copy in stage.arguments("COPY"):
            source = re.search(r"--from=(\S+)", copy)
            assert source is None or source.group(1) in STAGES, copy
    syntax = re.match(r"#\s*syntax=(\S+)", DOCKERFILE.read_text())
    assert syntax is None or PINNED.match(syntax.group(1)), "the frontend image is not pinned"


def test_one_target_per_service() -> None:
    assert "gateway" in SERVICES
    targets = [name for name in STAGES if name in SERVICES]
    assert sorted(targets) == SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_a_target_installs_only_its_own_package(service: str) -> None:
    target = STAGES[service]
    copies = target.arguments("COPY")
    assert copies == [f"--from=build-{service} /app/.venv /app/.venv"]
    syncs = [run for run in STAGES[f"build-{service}"].arguments("RUN") if "uv sync" in run]
    assert syncs, f"build-{service} installs nothing"
    for run in syncs:
        assert re.findall(r"--package (\S+)", run) == [f"tessera-{service}"], run
        for flag in ("--frozen", "--no-dev", "--no-editable"):
            assert flag in run.split(), f"{flag} missing from {run}"
    command = target.arguments("CMD")
    assert len(command) == 1
    assert f'"tessera.{service}.app:create_app"' in command[0]


@pytest.mark.parametrize("service", SERVICES)
def test_a_runtime_runs_unprivileged_without_build_tools(service: str) -> None:
    stages = chain(service)
    names = [stage.name for stage in stages]
    assert "builder" not in names, f"{service} is built on the builder stage"
    users = [user for stage in stages for user in stage.arguments("USER")]
    assert users, f"{service} runs as root"
    assert users[0] == "10001:10001", f"{service} runs as {users[0]}"
    for stage in stages:
        assert not stage.arguments("HEALTHCHECK"), "Kubernetes probes the services"
        for copy in stage.arguments("COPY"):
            assert "--from=uv" not in copy, f"{service} carries uv"
        for run in stage.arguments("RUN"):
            for tool in ("gcc", "build-essential", "g++", "make"):
                assert tool not in run.split(), f"{service} installs {tool}"


def _lock() -> dict[str, list[dict[str, Any]]]:
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        packages.setdefault(package["name"], []).append(package)
    return packages


LOCK = _lock()


def closure(name: str) -> set[str]:
    """The packages `name` brings in by uv.lock (its extras' included, dev groups not)."""
    seen: set[str] = set()
    pending: list[tuple[str, tuple[str, ...], str | None]] = [(name, (), None)]
    while pending:
        current, extras, version = pending.pop()
        for package in LOCK[current]:
            if version is not None and package["version"] != version:
                continue
            key = f"{current}[{','.join(extras)}]=={package['version']}"
            if key in seen:
                continue
            seen.add(key)
            wanted = list(package.get("dependencies", []))
            for extra in extras:
                wanted += package.get("optional-dependencies", {}).get(extra, [])
            pending += [
                (dep["name"], tuple(dep.get("extra", ())), dep.get("version")) for dep in wanted
            ]
    return {key.split("[")[0] for key in seen}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_package_brings_no_other_service_and_no_dev_tools(service: str) -> None:
    packages = closure(f"tessera-{service}")
    assert "tessera-platform" in packages, "tessera-migrate comes from tessera-platform"
    others = {f"tessera-{other}" for other in SERVICES if other != service}
    assert not packages & (others | {"tessera-devstack", "tessera-client"})
    assert not packages & DEV_ONLY


@pytest.mark.parametrize("service", SERVICES)
def test_the_openmp_runtime_is_where_numba_is(service: str) -> None:
    """Numba's parallel kernels need libgomp (its fallback aborts on concurrent calls)."""
    installs = " ".join(run for stage in chain(service) for run in stage.arguments("RUN"))
    assert ("libgomp1" in installs.split()) == ("numba" in closure(f"tessera-{service}"))


def test_the_build_context_leaves_local_state_and_models_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert "*" in patterns, "the context is an allow-list"
    assert {"!uv.lock", "!pyproject.toml", "!libs/", "!services/"} <= patterns
    for pattern in ("**/.venv*", "**/.tools", "**/.tessera", "**/tests", "**/*.onnx"):
        assert pattern in patterns
    assert "services/inference/models" in patterns, "Triton serves the models from S3"
