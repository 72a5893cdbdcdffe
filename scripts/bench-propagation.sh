#!/usr/bin/env bash
# Benchmark of how fast routers agree, run as `scripts/bench.sh suspend`, with release builds:
# two `silo serve` processes (A and B) on one registry in a PostgreSQL database of its own, their
# cache TTL 300 s, so only the registry's NOTIFY can tell B. One tenant is suspended through A's
# admin API and B is asked until it answers 403 tenant_suspended, timed from the moment the
# suspend request is sent; then it is resumed the same way. Prints p50, p99 and max in ms over
# BENCH_TRIES tries on stdout; progress goes to stderr. The registry database is dropped after.
#
# Environment (defaults in brackets):
#   BENCH_TRIES [100]
#   BENCH_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/postgres]  the server's admin role
#   BENCH_PORT [18480]   first of four loopback ports used
set -euo pipefail

source "$(dirname "$0")/bench-lib.sh"
tries="${BENCH_TRIES:-100}"
pg="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
port="${BENCH_PORT:-18480}"
need cargo curl psql
whole "$tries" "$port"
ports_free "$port" 4
build --bin silo --example bench_setup

work="$(mktemp -d "${TMPDIR:-/tmp}/silo-bench-propagation.XXXXXX")"
registry="silo_bench_registry_$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  psql "$pg" -qAtc "DROP DATABASE IF EXISTS $registry WITH (FORCE)" >/dev/null 2>&1 || say "could not drop $registry"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql "$pg" -qAtc "CREATE DATABASE $registry" >/dev/null || die "cannot create a registry database at ${pg%%@*}@..."
registry_url="${pg%/*}/$registry"
token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export SILO__ADMIN__TOKEN="$token"
SILO__SECRETS__MASTER_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export SILO__SECRETS__MASTER_KEY

# serve NAME MAIN_PORT: one router on the shared registry, its tenants in SQLite files.
serve() {
  local name="$1" main="$2"
  SILO_CONFIG="$root/config.toml" SILO__TEMPLATES_DIR="$root/tenant_templates" SILO__LOG__LEVEL=warn \
    SILO__DATA_DIR="$work/$name" SILO__REGISTRY__URL="$registry_url" SILO__REGISTRY__CACHE_TTL_SECS=300 \
    SILO__SERVERS__LOCAL__URL="sqlite://$work/tenants" \
    SILO__HTTP__LISTEN="127.0.0.1:$main" SILO__ADMIN__LISTEN="127.0.0.1:$((main + 1))" \
    "$silo" serve 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$main/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  die "router $name did not start: $(tail -5 "$work/$name.log")"
}
mkdir -p "$work/a" "$work/b" "$work/tenants"
serve a "$port"
serve b $((port + 2))
curl -fs -o /dev/null -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"slug":"acme"}' "http://127.0.0.1:$((port + 1))/admin/v1/tenants" || die "could not create the tenant"
# B has the tenant cached as active before the first try.
curl -s -o /dev/null -H 'host: acme.localhost' "http://127.0.0.1:$((port + 2))/v1/me"

say "$tries suspensions through A, watched on B"
echo "| change, seen on the other router | tries | p50 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|"
"$setup" propagation --admin "http://127.0.0.1:$((port + 1))" --router "http://127.0.0.1:$((port + 2))" \
  --slug acme --tries "$tries"
