#!/usr/bin/env bash
# Dependency audit: pip-audit over the pinned runtime (the layer) and development locks.
# Fails on any known vulnerability. pip-audit asks PyPI's per-release JSON API; where that API
# cannot be reached, it reports the packages it could not audit, and so does this script.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for lock in shared/requirements.txt requirements/dev.txt; do
  echo "== pip-audit $lock"
  output="$(.venv/bin/pip-audit --requirement "$lock" --no-deps --disable-pip --progress-spinner off 2>&1)"
  code=$?
  echo "$output" | grep -v "could not be audited" || true
  skipped="$(echo "$output" | grep -c "could not be audited" || true)"
  if [ "$skipped" -gt 0 ]; then
    echo "WARNING: $skipped packages of $lock could not be audited (vulnerability service unreachable)"
  fi
  # pip-audit exits non-zero when it finds a known vulnerability (or cannot run at all).
  if [ "$code" -ne 0 ]; then
    status=1
  fi
done
exit "$status"
