"""The Docker build context builds a package that runs every role.

No engine is needed: the files the Dockerfile COPYs (read from its COPY
lines, so the test follows the Dockerfile) are copied into an empty
directory, a wheel is built from that directory alone, and the wheel's
contents are imported in a fresh interpreter that cannot see this checkout.
A package left out of pyproject's list, a data file left out of the package
data, or a COPY line the build needs and the Dockerfile lacks each fails here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# The role entry points and the command line, as the image runs them.
ROLE_MODULES = (
    "streams.ingest",
    "streams.timewheel",
    "streams.dispatch",
    "streams.api.app",
    "streams.cli",
    "streams.ops.dev",
    "streams.ops.replay.cli",
    "streams.ops.status",
)


def dockerfile_copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY instruction, continuation lines joined."""
    text = dockerfile.read_text("utf-8").replace("\\\n", " ")
    copies = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue  # from another stage, not from the build context
        copies.append((args[:-1], args[-1]))
    return copies


def build_context(dockerfile: Path, into: Path) -> None:
    """Lay out what the Dockerfile copies, relative to its WORKDIR (the build's root)."""
    for sources, destination in dockerfile_copies(dockerfile):
        target = into / destination
        for source in sources:
            origin = ROOT / source
            assert origin.exists(), f"the Dockerfile copies {source}, which does not exist"
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    target,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                into_dir = destination.endswith("/") or len(sources) > 1
                path = target / origin.name if into_dir else target
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, path)


OFFLINE_SIGNS = re.compile(r"No matching distribution|NewConnectionError|Temporary failure")


def backend_is_installed(pyproject: Path) -> bool:
    """True when every build requirement is satisfied by this interpreter."""
    requires = tomllib.loads(pyproject.read_text("utf-8"))["build-system"]["requires"]
    for text in requires:
        requirement = Requirement(text)
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(installed, prereleases=True):
            return False
    return True


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("docker-context")
    context, wheels, unpacked = work / "context", work / "wheels", work / "unpacked"
    context.mkdir()
    build_context(ROOT / "Dockerfile", context)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    if backend_is_installed(context / "pyproject.toml"):
        # Offline: the interpreter already has a build backend the project accepts.
        command += ["--no-build-isolation", "--no-index"]
    # Otherwise pip fetches the declared backend, exactly as `docker build` does.
    built = subprocess.run(
        [*command, "--wheel-dir", str(wheels), str(context)],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=300,
    )
    if built.returncode != 0 and OFFLINE_SIGNS.search(built.stderr):
        pytest.skip("the build backend is too old here and the package index is unreachable")
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("kronwheel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    return unpacked


def test_the_dockerfile_copies_the_package_sources() -> None:
    copied = {source for sources, _ in dockerfile_copies(ROOT / "Dockerfile") for source in sources}
    assert {"pyproject.toml", "streams", "schemas", "infra"} <= copied


def test_every_package_of_the_source_tree_is_in_the_wheel(unpacked_wheel: Path) -> None:
    packages = {p.parent.relative_to(ROOT) for p in (ROOT / "streams").rglob("__init__.py")}
    packages |= {Path("streams/schemas"), Path("streams/infra")}  # mapped from the top level
    missing = [
        str(p) for p in sorted(packages) if not (unpacked_wheel / p / "__init__.py").exists()
    ]
    assert not missing, f"packages missing from the wheel (pyproject's package list?): {missing}"
    modules = {p.relative_to(ROOT) for p in (ROOT / "streams").rglob("*.py")}
    absent = [str(p) for p in sorted(modules) if not (unpacked_wheel / p).exists()]
    assert not absent, f"modules missing from the wheel: {absent}"


def test_schemas_and_infra_files_are_in_the_wheel(unpacked_wheel: Path) -> None:
    expected = {
        "streams/schemas": sorted(p.name for p in (ROOT / "schemas").glob("*.avsc")),
        "streams/infra": ["topics.toml"],
        "streams/infra/cassandra": sorted(
            p.name for p in (ROOT / "infra" / "cassandra").glob("*.cql")
        ),
        "streams/api/static": sorted(
            p.name for p in (ROOT / "streams" / "api" / "static").iterdir() if p.is_file()
        ),
    }
    for folder, names in expected.items():
        assert names, f"nothing expected in {folder}?"
        for name in names:
            assert (unpacked_wheel / folder / name).is_file(), f"{folder}/{name} not in the wheel"


def test_every_role_imports_from_the_wheel_alone(unpacked_wheel: Path) -> None:
    # -S: no site processing, so no .pth file (the checkout's editable install)
    # puts this checkout on the path; the dependencies come from the
    # interpreter's site-packages, named explicitly after the wheel.
    path = [str(unpacked_wheel), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    probe = f"""
import importlib, pathlib, sys
root = pathlib.Path({str(unpacked_wheel)!r}).resolve()
for name in {ROLE_MODULES!r}:
    importlib.import_module(name)
import streams.kafka.topics as topics, streams.config as config
topics.load_topic_specs(config.Settings())
from streams.kafka.codec import *  # the Avro schemas are read at import
outside = sorted(
    name for name, module in sys.modules.items()
    if name.split(".")[0] == "streams"
    and getattr(module, "__file__", None)
    and not pathlib.Path(module.__file__).resolve().is_relative_to(root)
)
assert not outside, f"imported from outside the wheel: {{outside}}"
from streams.cli import main
sys.exit(main(["--help"]))
"""
    env = {"PYTHONPATH": ":".join(dict.fromkeys(path)), "PATH": "/usr/bin:/bin"}
    ran = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True,
        text=True,
        cwd=unpacked_wheel.parent,
        env=env,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "processor" in ran.stdout
