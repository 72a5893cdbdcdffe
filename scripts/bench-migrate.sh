#!/usr/bin/env bash
# Benchmark of the migration fan-out, run as `scripts/bench.sh migrate`, with release builds, on
# SQLite tenants in a temporary data directory or (BENCH_BACKEND=postgres) on PostgreSQL tenant
# databases. Provisions BENCH_TENANTS tenants through the admin API, gives each BENCH_ROWS
# projects, then rolls one new tenant migration (a column and an index on projects) out with
# `silo migrate --migrations DIR`, the way an operator would:
#   (1) at --concurrency BENCH_CONCURRENCY
#   (2) at --concurrency 1: SQLite, the same migration on a copy of the fleet; PostgreSQL, a
#       second migration of the same shape on the same fleet (copying 1,000 databases would
#       cost more than the runs)
#   (3) the same command again, with nothing pending
# PostgreSQL tenants (databases and roles) are dropped at the end.
# Prints one table on stdout (wall time and tenants per second of each, and (1) against (2) of
# the same run); progress goes to stderr.
#
# Environment (defaults in brackets):
#   BENCH_BACKEND [sqlite]  sqlite or postgres
#   BENCH_TENANTS [10000 on SQLite, 1000 on PostgreSQL]   BENCH_ROWS [200]   BENCH_CONCURRENCY [4]
#   BENCH_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/postgres]  the server's admin role
#   BENCH_PORT [18280]      first of two loopback ports used (provisioning only)
#   BENCH_KEEP [0]          1: keep the temporary directory (its path is printed)
set -euo pipefail

source "$(dirname "$0")/bench-lib.sh"
backend="${BENCH_BACKEND:-sqlite}"
case "$backend" in
  sqlite) tenants="${BENCH_TENANTS:-10000}" ;;
  postgres) tenants="${BENCH_TENANTS:-1000}" ;;
  *) echo "bench: BENCH_BACKEND must be sqlite or postgres" >&2; exit 2 ;;
esac
pg="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
rows="${BENCH_ROWS:-200}"
concurrency="${BENCH_CONCURRENCY:-4}"
port="${BENCH_PORT:-18280}"
keep="${BENCH_KEEP:-0}"

need cargo curl awk sed
whole "$tenants" "$rows" "$concurrency" "$port"
ports_free "$port" 2
build --bin silo --example bench_setup

work="$(mktemp -d "${TMPDIR:-/tmp}/silo-bench-migrate.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "$backend" = postgres ] && [ -s "$work/databases.txt" ]; then
    say "dropping the PostgreSQL tenant databases"
    "$setup" drop-postgres --server "$pg" --databases "$work/databases.txt" || say "could not drop them all"
  fi
  if [ "$keep" = "1" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export SILO_CONFIG="$root/config.toml"
export SILO__TEMPLATES_DIR="$root/tenant_templates"
export SILO__LOG__LEVEL=warn
SILO__SECRETS__MASTER_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
admin_token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export SILO__SECRETS__MASTER_KEY
# The tenant server of the fleet in data directory $1.
server_of() { if [ "$backend" = postgres ]; then echo "$pg"; else echo "sqlite://$1/tenants"; fi; }
# Runs silo on the fleet in data directory $1.
on() {
  local data="$1"
  shift
  SILO__DATA_DIR="$data" SILO__SERVERS__LOCAL__URL="$(server_of "$data")" "$silo" "$@"
}

# --- the fleet: provisioned through the admin API, then filled with rows (silo stopped) -------
say "provisioning $tenants tenants"
for i in $(seq 1 "$tenants"); do printf 't%05d free none\n' "$i"; done >"$work/tenants.txt"
# Started directly, not through `on`: $! must be silo itself, not a subshell, for the TERM below.
SILO__ADMIN__TOKEN="$admin_token" SILO__HTTP__LISTEN="127.0.0.1:$port" \
  SILO__ADMIN__LISTEN="127.0.0.1:$((port + 1))" SILO__DATA_DIR="$work/fleet" \
  SILO__SERVERS__LOCAL__URL="$(server_of "$work/fleet")" "$silo" serve 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || die "silo did not start: $(tail -5 "$work/serve.log")"
  sleep 0.1
done
SILO__ADMIN__TOKEN="$admin_token" BENCH_PASSWORD=unused timeout 3600 "$setup" provision \
  --admin "http://127.0.0.1:$((port + 1))" --tenants "$work/tenants.txt" --concurrency 8 \
  --databases-out "$work/databases.txt"
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
say "giving each tenant $rows projects"
if [ "$backend" = postgres ]; then
  "$setup" fill-postgres --server "$pg" --databases "$work/databases.txt" --rows "$rows"
else
  "$setup" fill --dir "$work/fleet/tenants" --rows "$rows"
fi

# --- the migration: the built-in ones and one more -------------------------------------------
mkdir -p "$work/migrations"
cp "$root"/migrations/tenant/*.sql "$work/migrations/"
last="$(find "$work/migrations" -name '*.sql' | sed 's#.*/0*\([0-9]*\)_.*#\1#' | sort -n | tail -1)"
next="$(printf '%04d' $((last + 1)))"
cat >"$work/migrations/${next}_bench_colour.sql" <<'EOF'
ALTER TABLE projects ADD COLUMN colour TEXT;
CREATE INDEX projects_colour ON projects (colour);
EOF
if [ "$backend" = postgres ]; then
  # (2)'s folder: the first new migration and a second of the same shape.
  cp -a "$work/migrations" "$work/migrations-two"
  cat >"$work/migrations-two/$(printf '%04d' $((last + 2)))_bench_shade.sql" <<'EOF'
ALTER TABLE projects ADD COLUMN shade TEXT;
CREATE INDEX projects_shade ON projects (shade);
EOF
else
  cp -a "$work/fleet" "$work/fleet-one"
fi
sync

now() { date +%s.%N; }
# Runs `silo migrate` on a fleet; prints its wall seconds; the fleet must end at the new version.
timed() {
  local data="$1" label="$2" folder="$3" started ended target
  shift 3
  target="$(find "$folder" -name '*.sql' | sed 's#.*/0*\([0-9]*\)_.*#\1#' | sort -n | tail -1)"
  started="$(now)"
  on "$data" migrate --migrations "$folder" "$@" 2>"$work/$label.log" ||
    die "$label: silo migrate failed: $(tail -5 "$work/$label.log")"
  ended="$(now)"
  grep -q "target version $target: $tenants tenants" "$work/$label.log" ||
    die "$label: unexpected summary: $(tail -2 "$work/$label.log")"
  say "$label: $(tail -1 "$work/$label.log")"
  awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", b - a }'
}

say "migrating at --concurrency $concurrency"
wide="$(timed "$work/fleet" wide "$work/migrations" --concurrency "$concurrency")"
if [ "$backend" = postgres ]; then
  say "migrating the second migration at --concurrency 1"
  narrow="$(timed "$work/fleet" narrow "$work/migrations-two" --concurrency 1)"
  say "running again with nothing pending"
  noop="$(timed "$work/fleet" noop "$work/migrations-two" --concurrency "$concurrency")"
else
  say "migrating a copy at --concurrency 1"
  narrow="$(timed "$work/fleet-one" narrow "$work/migrations" --concurrency 1)"
  say "running again with nothing pending"
  noop="$(timed "$work/fleet" noop "$work/migrations" --concurrency "$concurrency")"
fi
grep -q "$tenants up to date" "$work/noop.log" || die "the re-run found work: $(tail -1 "$work/noop.log")"
final="$work/migrations"; [ "$backend" = postgres ] && final="$work/migrations-two"
status="$(SILO__MIGRATIONS__DIR="$final" on "$work/fleet" migrate status)"

rate() { awk -v n="$tenants" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
echo "| run | tenants | wall s | tenants/s |"
echo "|---|---|---|---|"
echo "| (1) --concurrency $concurrency | $tenants | $wide | $(rate "$wide") |"
echo "| (2) --concurrency 1 | $tenants | $narrow | $(rate "$narrow") |"
echo "| (3) re-run, nothing pending | $tenants | $noop | $(rate "$noop") |"
echo
echo "$backend tenants; (1)/(2) speed-up: $(awk -v a="$narrow" -v b="$wide" 'BEGIN { printf "%.2f", a / b }'); $rows projects per tenant; $(nproc) CPUs"
say "status: $(tr -d ' \n' <<<"$status")"
