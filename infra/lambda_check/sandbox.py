"""Run a built layer and function as Lambda lays them out, on CPython 3.13 for aarch64.

The interpreter is Debian 13's python3.13 for arm64 (``shared/trixie-python.sh root arm64``, a tree
cached outside the clone), run by qemu-user-static inside a ``chroot`` of that tree. Each process
gets its own mount namespace (``unshare``), in which the layer is bound read-only at ``/opt``, the
function at ``/var/task`` and the runtime interface client at ``/var/runtime``, as on Lambda. No
container engine and no binfmt_misc registration is needed: the x86_64 qemu binary is started
directly and runs the aarch64 interpreter (nothing in the check starts another program).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRIXIE_PYTHON = ROOT / "shared" / "trixie-python.sh"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
QEMU = "/usr/bin/qemu-aarch64-static"
PYTHON = "/usr/bin/python3.13"
# Lambda's arm64 functions run on Graviton2 (Neoverse N1). QEMU's default CPU ("max") also has
# pointer authentication, which Debian's binaries use and which QEMU emulates slowly: N1 runs the
# same code four to five times faster here.
QEMU_CPU = "neoverse-n1"
MOUNT_POINTS = ("/opt", "/var/task", "/var/runtime")

# What Lambda's python3.13 runtime sets (the documented reserved variables), minus credentials.
# The import path is the runtime's: /var/task first, then the layer's two folders, then the
# runtime's own packages.
LAMBDA_ENVIRONMENT = {
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": (
        "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:"
        "/opt/lib"
    ),
    "PYTHONPATH": "/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime",
}

# Binds each folder read-only, then enters the tree. Runs as the host's sh, inside `unshare -m`:
# the mounts vanish with the process.
_ENTER = """
set -eu
root="$1"; shift
for pair in "$@"; do
  case "$pair" in --) break ;; esac
  source="${pair%%=*}"; target="$root${pair#*=}"
  mount --bind "$source" "$target"
  mount -o remount,bind,ro "$target"
  shift
done
shift
exec /usr/bin/unshare --root="$root" --wd=/var/task "$@"
"""


def trixie_root(arch: str = "arm64") -> Path:
    """The cached Debian 13 tree for ``arch``, created (with its tools) if missing."""
    completed = subprocess.run(
        ["bash", str(TRIXIE_PYTHON), "root", arch],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    root = Path(completed.stdout.strip())
    for point in MOUNT_POINTS:
        (root / point.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return root


def runtime_client_dir(cache: Path, python: str) -> Path:
    """awslambdaric and its dependencies for cp313/aarch64, installed once per pinned set into
    ``cache`` (next to the tree) and compiled by CPython 3.13, as Lambda's /var/runtime is."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    target = cache / f"lambda-runtime-{digest}"
    if (target / ".complete").is_file():
        return target
    scratch = cache / f".building-runtime-{digest}"
    shutil.rmtree(scratch, ignore_errors=True)
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_aarch64",
            "--platform",
            "manylinux_2_28_aarch64",
            "--implementation",
            "cp",
            "--python-version",
            "3.13",
            "--abi",
            "cp313",
            "--target",
            str(scratch),
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    subprocess.run(
        ["bash", str(TRIXIE_PYTHON), "run", "-m", "compileall", "-q", "-j1", str(scratch)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)
    (target / ".complete").touch()
    return target


def command(root: Path, *, layer: Path, task: Path, runtime: Path, argv: list[str]) -> list[str]:
    """The command that runs ``python3.13 argv...`` in the tree with the three folders mounted,
    from /var/task (Lambda's working directory). Its environment is the caller's (pass
    :func:`lambda_environment` as ``env``): nothing else reaches the interpreter."""
    binds = [f"{layer}=/opt", f"{task}=/var/task", f"{runtime}=/var/runtime"]
    return [
        "/usr/bin/unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        _ENTER,
        "enter",
        str(root),
        *binds,
        "--",
        QEMU,
        "-cpu",
        QEMU_CPU,
        PYTHON,
        *argv,
    ]


def lambda_environment(extra: Mapping[str, str]) -> dict[str, str]:
    return {**LAMBDA_ENVIRONMENT, **extra}
