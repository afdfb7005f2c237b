"""`sam build` as CI and a user run it (no Docker, no python3.13 on the PATH: the build brings
Debian 13's, cached outside the clone), then the artifacts that `sam deploy` would upload, zipped
and unpacked again: the layer holds the package under its own name and only the pinned runtime
dependencies, every wheel is for CPython 3.13 on arm64, every module has CPython 3.13 bytecode that
a read-only /opt uses at import (tried on CPython 3.13 for aarch64, see infra/lambda_check), every
function's artifact is its handler module alone, and the layer fits Lambda's limits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from email.parser import Parser
from pathlib import Path

import pytest

from devserver.template import load_template
from lambda_check import sandbox

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


def _cpython_313_magic() -> bytes:
    completed = subprocess.run(
        [
            "bash",
            str(sandbox.TRIXIE_PYTHON),
            "run",
            "-c",
            "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return bytes.fromhex(completed.stdout.strip())


def test_build_layer_every_module_has_unchecked_cpython_313_bytecode(
    unpacked: dict[str, Path], report: Callable[[str], None]
) -> None:
    python = unpacked["SharedLayer"] / "python"
    magic = _cpython_313_magic()
    sources = sorted(python.rglob("*.py"))
    assert sources
    expected = set()
    for source in sources:
        cached = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        expected.add(cached)
        header = cached.read_bytes()[:16]
        assert header[:4] == magic, cached
        # PEP 552 flags: bit 0 = hash-based, bit 1 = check the source. Hash-based and unchecked:
        # the import trusts it without the source's mtime, which the zip round trip loses.
        assert int.from_bytes(header[4:8], "little") == 0b01, cached
    assert set(python.rglob("*.pyc")) == expected  # no stray bytecode of another interpreter
    report(f"\nlayer bytecode: {len(expected)} cpython-313 .pyc (unchecked hash)")


# Imports every function's module on CPython 3.13 for aarch64 with the unpacked layer read-only at
# /opt, and records every module the import system had to compile from source.
_IMPORT_PROBE = """
import importlib._bootstrap_external as external, importlib.util, json, sys
compiled = []
to_code = external.SourceLoader.source_to_code
def counting(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return to_code(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = counting
for name in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("function_" + name, f"/var/task/{name}/app.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
layer = sorted(m.__name__ for m in list(sys.modules.values())
               if (getattr(m, "__file__", None) or "").startswith("/opt/"))
compiled = [path for path in compiled if path.startswith("/opt/")]
try:
    open("/opt/python/written-at-run-time", "w").close()
    read_only = False
except OSError:
    read_only = True
print(json.dumps({"layer_modules": layer, "compiled": compiled, "read_only": read_only}))
"""


def test_build_layer_bytecode_is_used_at_import_on_cpython_313_aarch64(
    unpacked: dict[str, Path], report: Callable[[str], None]
) -> None:
    root = sandbox.trixie_root("arm64")
    runtime = sandbox.runtime_client_dir(root.parent, sys.executable)
    functions = sorted(_functions())
    task = next(iter(unpacked.values())).parent  # every function's folder, side by side
    completed = subprocess.run(
        sandbox.command(
            root,
            layer=unpacked["SharedLayer"],
            task=task,
            runtime=runtime,
            argv=["-c", _IMPORT_PROBE, *functions],
        ),
        # Nothing listens on port 1: importing a function must not connect to the database.
        env=sandbox.lambda_environment(
            {
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
                "BETTER_AUTH_SECRET": "x" * 32,
            }
        ),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    probe = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "todo_core.api" in probe["layer_modules"]
    assert "pydantic_core._pydantic_core" in probe["layer_modules"]
    assert probe["compiled"] == []
    assert probe["read_only"] is True  # as on Lambda: nothing could have cached bytecode there
    report(
        f"\n{len(functions)} functions imported on CPython 3.13/aarch64: "
        f"{len(probe['layer_modules'])} modules from /opt, {len(probe['compiled'])} compiled"
    )
