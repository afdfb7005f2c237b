#!/usr/bin/env bash
# Stops the PgBouncer started by start.sh.
set -euo pipefail
dir="${PGBOUNCER_DIR:-/tmp/todo-api-pgbouncer}"
if [ -f "$dir/pgbouncer.pid" ]; then
  kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
fi
