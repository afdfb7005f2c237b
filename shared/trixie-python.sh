#!/usr/bin/env bash
# CPython 3.13 from Debian 13 ("trixie") packages, for the build and for `make lambda-check`.
#
#   trixie-python.sh root ARCH      print the root of a Debian 13 tree holding python3.13 for ARCH
#                                   (amd64 or arm64), creating it first if it is missing
#   trixie-python.sh run ARGS...    run python3.13 for this machine's architecture with ARGS
#
# Lambda's python3.13 runtime is CPython 3.13: the layer's bytecode must come from a 3.13 (the
# magic number changes with every minor version) and the layer must be tried on one. Debian's
# archive is all it needs from the network. The trees are kept in TODO_API_CACHE (default
# /var/cache/todo-api), outside the clone, and made again when missing. Building one needs
# mmdebstrap (and qemu-user-static for a foreign architecture): installed with apt-get when
# missing, which needs root.
set -euo pipefail

CACHE="${TODO_API_CACHE:-/var/cache/todo-api}"
SUITE=trixie
# The interpreter, and the C++ runtime that Lambda's image also has (awslambdaric's extension
# links it).
PACKAGES=python3.13,libstdc++6

native_arch() { dpkg --print-architecture; }

ensure_tools() {
  local missing=()
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  if [ "$1" != "$(native_arch)" ] && [ "$1" = arm64 ] && ! command -v qemu-aarch64-static >/dev/null 2>&1; then
    missing+=(qemu-user-static)
  fi
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" != 0 ]; then
    echo "trixie-python.sh: needs ${missing[*]} (apt-get install ${missing[*]}, as root)" >&2
    exit 1
  fi
  echo "trixie-python.sh: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

python_in() {
  # The tree's glibc is newer than the machine's: run the interpreter with the tree's own loader.
  local root="$1" loader triplet
  shift
  case "$(native_arch)" in
    amd64) loader=usr/lib64/ld-linux-x86-64.so.2 triplet=x86_64-linux-gnu ;;
    arm64) loader=usr/lib/ld-linux-aarch64.so.1 triplet=aarch64-linux-gnu ;;
    *) echo "trixie-python.sh: unsupported machine $(native_arch)" >&2; exit 1 ;;
  esac
  PYTHONHOME="$root/usr" PYTHONDONTWRITEBYTECODE=1 \
    "$root/$loader" --library-path "$root/usr/lib/$triplet" "$root/usr/bin/python3.13" "$@"
}

tree() {
  local arch="$1" root
  # A new package list makes a new tree.
  root="$CACHE/$SUITE-python3.13-$arch-$(echo "$PACKAGES" | md5sum | cut -c1-8)"
  if [ -x "$root/usr/bin/python3.13" ] && [ -f "$root/.complete" ]; then
    echo "$root"
    return
  fi
  local native_root=""
  [ "$arch" = "$(native_arch)" ] || native_root="$(tree "$(native_arch)")"
  ensure_tools "$arch"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock-$arch"
  flock 9
  if [ ! -f "$root/.complete" ]; then
    local scratch="$CACHE/.building-$arch-$$"
    rm -rf "$scratch" "$root"
    echo "trixie-python.sh: creating $root (Debian $SUITE, $PACKAGES, $arch)" >&2
    # extract: unpack the packages and their dependencies, run nothing from them, so a foreign
    # architecture needs no emulator to be built.
    mmdebstrap --quiet --variant=extract --architectures="$arch" --include="$PACKAGES" \
      --format=directory "$SUITE" "$scratch" >&2
    # /usr is merged in Debian 13 but the extract variant does not create the top-level links.
    for link in bin sbin lib; do ln -sfn "usr/$link" "$scratch/$link"; done
    if [ "$arch" != "$(native_arch)" ]; then
      cp "$(command -v qemu-aarch64-static)" "$scratch/usr/bin/qemu-aarch64-static"
    fi
    mv "$scratch" "$root"
    # The packages ship no bytecode (their postinst would compile it): compile the standard
    # library once, with the native interpreter (bytecode does not depend on the CPU).
    python_in "${native_root:-$root}" -m compileall -q -o0 -x '/test/|lib2to3|idlelib|tkinter|turtledemo' \
      "$root/usr/lib/python3.13" >&2
    touch "$root/.complete"
  fi
  flock -u 9
  echo "$root"
}

case "${1:-}" in
  root) tree "${2:?architecture: amd64 or arm64}" ;;
  run) shift; python_in "$(tree "$(native_arch)")" "$@" ;;
  *) echo "usage: $0 root ARCH | run ARGS..." >&2; exit 2 ;;
esac
