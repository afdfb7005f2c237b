"""`sam build` as CI and a user run it (no Docker, no Python 3.13 needed), then the artifacts that
`sam deploy` would upload, zipped and unpacked again: the layer holds the package under its own
name and only the pinned runtime dependencies, every wheel is for CPython 3.13 on arm64, every
function's artifact is its handler module alone, and the layer fits Lambda's limits."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from email.parser import Parser
from pathlib import Path

import pytest

from devserver.template import load_template

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
LAYER_BUDGET = 100 * 1024 * 1024  # "well under" the limit: room for the chat's dependencies
PACKAGE = "todo_core"
ELF_MACHINE_AARCH64 = 0xB7
# What `pip install` must never put in the layer: the runtime has boto3; the rest is tooling.
NOT_IN_LAYER = {
    "boto3",
    "botocore",
    "s3transfer",
    "moto",
    "pytest",
    "mypy",
    "ruff",
    "alembic",
    "uv",
}

pytestmark = pytest.mark.build


def _zip_dir(source: Path, archive: Path) -> Path:
    """Zip a build directory the way `sam package` does (paths relative to it)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(source).as_posix())
    return archive


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Every built resource, zipped and unpacked again, by logical id."""
    if not SAM.exists():
        if os.environ.get("CI"):
            pytest.fail("the SAM CLI is missing: `make sam-tools`")
        pytest.skip("the SAM CLI is not installed: `make sam-tools`")
    work = tmp_path_factory.mktemp("sam")
    build_dir = work / "build"
    # A PATH without any python3.13 proves the build does not need the target interpreter.
    path = os.pathsep.join(
        directory
        for directory in os.environ["PATH"].split(os.pathsep)
        if not (Path(directory) / "python3.13").exists()
    )
    subprocess.run(
        [
            str(SAM),
            "build",
            "--template",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(build_dir),
            "--base-dir",
            str(ROOT),
        ],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{SAM.parent}{os.pathsep}{path}", "SAM_CLI_TELEMETRY": "0"},
        check=True,
        capture_output=True,
        timeout=600,
    )
    result: dict[str, Path] = {}
    for resource in sorted(p for p in build_dir.iterdir() if p.is_dir()):
        archive = _zip_dir(resource, work / f"{resource.name}.zip")
        target = work / "unpacked" / resource.name
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(target)
        result[resource.name] = target
    yield result
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def report(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Print a figure in the test run's output, past the output capture."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)

    return write


def _functions() -> dict[str, str]:
    template = load_template(ROOT / "template.yaml")
    handler = template["Globals"]["Function"]["Handler"]
    return {
        name: resource["Properties"].get("Handler", handler)
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def test_build_layer_holds_the_package_under_its_own_name(unpacked: dict[str, Path]) -> None:
    python = unpacked["SharedLayer"] / "python"
    source = ROOT / "shared" / PACKAGE
    expected = {p.relative_to(source) for p in source.rglob("*.py")}
    assert {p.relative_to(python / PACKAGE) for p in (python / PACKAGE).rglob("*.py")} == expected
    assert not list((python / PACKAGE).rglob("__pycache__"))


def test_build_layer_holds_exactly_the_pinned_runtime_dependencies(
    unpacked: dict[str, Path],
) -> None:
    python = unpacked["SharedLayer"] / "python"
    pins = {}
    for line in (ROOT / "shared" / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, version = requirement.split("==")
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    installed = {}
    for dist_info in python.glob("*.dist-info"):
        metadata = Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
        installed[re.sub(r"[-_.]+", "-", metadata["Name"]).lower()] = metadata["Version"]
    assert installed == pins
    assert not NOT_IN_LAYER & {p.name for p in python.iterdir()}
    assert not (python / "bin").exists()


def test_build_layer_wheels_are_for_cpython_313_on_arm64(
    unpacked: dict[str, Path], report: Callable[[str], None]
) -> None:
    python = unpacked["SharedLayer"] / "python"
    tags: set[str] = set()
    for wheel in python.glob("*.dist-info/WHEEL"):
        tags |= {
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        }
    for tag in tags:
        interpreter, abi, platform = tag.split("-")
        if platform == "any":
            assert (interpreter, abi) in {("py3", "none"), ("py2.py3", "none")}, tag
            continue
        assert "aarch64" in platform, tag
        # abi3 wheels built for an older CPython 3 (cryptography's cp311-abi3) run on 3.13.
        stable_abi = abi == "abi3" and interpreter.startswith("cp3") and int(interpreter[3:]) <= 13
        assert (interpreter, abi) == ("cp313", "cp313") or stable_abi, tag
    binaries = [p for p in python.rglob("*") if p.is_file() and ".so" in p.name]
    assert binaries
    for binary in binaries:
        header = binary.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", binary
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, binary
        if "cpython-" in binary.name:
            assert "cpython-313-aarch64-linux-gnu" in binary.name, binary
    report(f"\nlayer wheel tags: {', '.join(sorted(tags))}")


def test_build_each_function_artifact_is_its_handler_module(unpacked: dict[str, Path]) -> None:
    functions = _functions()
    assert set(unpacked) == {*functions, "SharedLayer"}
    for name, handler in functions.items():
        module = handler.rpartition(".")[0].replace(".", "/") + ".py"
        artifact = unpacked[name]
        assert (artifact / module).is_file(), name
        assert sorted(p.name for p in artifact.rglob("*")) == [module], name
        assert _size(artifact) < 4096, name


def test_build_layer_size_is_well_under_the_lambda_limit(
    unpacked: dict[str, Path], report: Callable[[str], None]
) -> None:
    layer = _size(unpacked["SharedLayer"])
    functions = max(_size(unpacked[name]) for name in _functions())
    report(f"\nlayer unzipped: {layer / 1024 / 1024:.1f} MiB ({layer} bytes)")
    assert layer + functions < LAYER_BUDGET < LAMBDA_UNZIPPED_LIMIT
