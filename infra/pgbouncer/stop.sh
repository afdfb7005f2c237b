#!/usr/bin/env bash
# Stops the PgBouncer started by start.sh (PGBOUNCER_DIR as there) and waits until it has exited,
# so that its port is free for the next start.
set -euo pipefail
dir="${PGBOUNCER_DIR:-/tmp/todo-api-pgbouncer}"
pid="$(cat "$dir/pgbouncer.pid" 2>/dev/null || true)"
if [ -z "$pid" ] || ! kill "$pid" 2>/dev/null; then
  exit 0  # not running
fi
for _ in $(seq 100); do
  kill -0 "$pid" 2>/dev/null || exit 0
  sleep 0.1
done
echo "pgbouncer (pid $pid) did not stop within 10 s" >&2
exit 1
