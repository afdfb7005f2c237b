#!/usr/bin/env bash
# Starts PgBouncer in transaction mode in front of the local PostgreSQL, as Neon's pooled
# connection string serves it: every database name is forwarded to 127.0.0.1:5432.
# Installs Debian's pgbouncer package when it is missing (needs root, as in CI).
#   PGBOUNCER_PORT (default 6432), PGBOUNCER_POOL_SIZE (default 5), PGBOUNCER_DIR.
set -euo pipefail

port="${PGBOUNCER_PORT:-6432}"
pool_size="${PGBOUNCER_POOL_SIZE:-5}"
dir="${PGBOUNCER_DIR:-/tmp/todo-api-pgbouncer}"

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "installing pgbouncer (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq pgbouncer >&2
  # The package starts its own instance on 6432 with its own config; ours replaces it.
  (service pgbouncer stop || kill "$(cat /var/run/postgresql/pgbouncer.pid)" || true) >/dev/null 2>&1
  sleep 1
fi
bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  if [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
    echo "pgbouncer already running on 127.0.0.1:$port" >&2
    exit 0
  fi
  echo "port $port is taken by another process (Debian's own pgbouncer service?):" \
    "stop it, or choose another port with PGBOUNCER_PORT" >&2
  exit 1
fi

mkdir -p "$dir"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
INI
echo '"postgres" ""' > "$dir/userlist.txt"

run_as=()
if [ "$(id -u)" = 0 ]; then
  chown -R postgres: "$dir"
  run_as=(-u postgres)
fi
"$bin" -d "${run_as[@]}" "$dir/pgbouncer.ini"

for _ in $(seq 50); do
  if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "pgbouncer (transaction mode, pool $pool_size) on 127.0.0.1:$port" >&2
    exit 0
  fi
  sleep 0.1
done
echo "pgbouncer did not start; see $dir/pgbouncer.log" >&2
exit 1
