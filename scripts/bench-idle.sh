#!/usr/bin/env bash
# What an idle tenant costs, run as `scripts/bench.sh idle`, with release builds: for each
# fleet size in BENCH_SIZES, SQLite tenants provisioned through the admin API (no owner, the
# free plan), then
#   disk      bytes per tenant of the tenants directory, and of the registry (control.db)
#   router    silo's resident memory, freshly started on the fleet, before and after every
#             tenant has been resolved once (GET /v1/me without a token: 401, the registry
#             cache holds the tenant, no tenant pool is opened); per tenant, the difference
# and on PostgreSQL (BENCH_POSTGRES_URL, empty to skip) the size of BENCH_PG_TENANTS tenant
# databases and what the server's catalogue grows by. Prints one table on stdout.
#
# Environment (defaults in brackets):
#   BENCH_SIZES ["10000 100000"]   BENCH_PG_TENANTS [20]
#   BENCH_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/postgres]
#   BENCH_PORT [18580]   first of two loopback ports used
set -euo pipefail

source "$(dirname "$0")/bench-lib.sh"
sizes="${BENCH_SIZES:-10000 100000}"
pg_tenants="${BENCH_PG_TENANTS:-20}"
pg="${BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}"
port="${BENCH_PORT:-18580}"
need cargo curl awk du
whole $sizes "$pg_tenants" "$port"
ports_free "$port" 2
build --bin silo --example bench_setup
work="$(mktemp -d "${TMPDIR:-/tmp}/silo-bench-idle.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -s "$work/pg-databases.txt" ]; then
    "$setup" drop-postgres --server "$pg" --databases "$work/pg-databases.txt" || say "could not drop them all"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export SILO__ADMIN__TOKEN="$token" BENCH_PASSWORD=unused
SILO__SECRETS__MASTER_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export SILO__SECRETS__MASTER_KEY

# serve DATA SERVER_URL: silo on the fleet, until stop.
serve() {
  SILO_CONFIG="$root/config.toml" SILO__TEMPLATES_DIR="$root/tenant_templates" SILO__LOG__LEVEL=warn \
    SILO__DATA_DIR="$1" SILO__SERVERS__LOCAL__URL="$2" \
    SILO__HTTP__LISTEN="127.0.0.1:$port" SILO__ADMIN__LISTEN="127.0.0.1:$((port + 1))" \
    "$silo" serve 2>>"$work/serve.log" &
  pid=$!
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  die "silo did not start: $(tail -5 "$work/serve.log")"
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status"; }
per() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.0f", a / n }'; }

echo "| backend, tenants | tenant data, bytes each | registry, bytes each | router RSS at start, MB | after resolving all, MB | router, bytes per resolved tenant |"
echo "|---|---|---|---|---|---|"
for n in $sizes; do
  data="$work/sqlite-$n"
  mkdir -p "$data"
  for i in $(seq 1 "$n"); do printf 'i%06d free none\n' "$i"; done >"$work/tenants-$n.txt"
  say "provisioning $n SQLite tenants"
  serve "$data" "sqlite://$data/tenants"
  "$setup" provision --admin "http://127.0.0.1:$((port + 1))" --tenants "$work/tenants-$n.txt" --concurrency 8 >&2
  stop
  # The tenant files as they rest (WAL checkpointed by their last close), and the registry.
  tenant_bytes="$(du -sb "$data/tenants" | cut -f1)"
  registry_bytes="$(du -cb "$data"/control.db* | tail -1 | cut -f1)"
  serve "$data" "sqlite://$data/tenants"
  sleep 2
  start_kib="$(rss_kib)"
  "$setup" touch --url "http://127.0.0.1:$port" --slugs "$work/tenants-$n.txt" >&2
  sleep 2
  after_kib="$(rss_kib)"
  stop
  echo "| SQLite, $n | $(per "$tenant_bytes" "$n") | $(per "$registry_bytes" "$n") | $(awk -v k="$start_kib" 'BEGIN { printf "%.1f", k / 1024 }') | $(awk -v k="$after_kib" 'BEGIN { printf "%.1f", k / 1024 }') | $(per $(((after_kib - start_kib) * 1024)) "$n") |"
  rm -rf "$data"
done

if [ -n "$pg" ]; then
  say "provisioning $pg_tenants PostgreSQL tenants"
  data="$work/postgres"
  mkdir -p "$data"
  for i in $(seq 1 "$pg_tenants"); do printf 'p%06d free none\n' "$i"; done >"$work/tenants-pg.txt"
  serve "$data" "$pg"
  "$setup" provision --admin "http://127.0.0.1:$((port + 1))" --tenants "$work/tenants-pg.txt" \
    --concurrency 4 --databases-out "$work/pg-databases.txt" >&2
  total=0
  for i in $(seq 1 "$pg_tenants"); do
    slug="$(printf 'p%06d' "$i")"
    bytes="$(curl -fs -H "authorization: Bearer $token" "http://127.0.0.1:$((port + 1))/admin/v1/tenants/$slug/stats" |
      sed -n 's/.*"database_bytes":\([0-9]*\).*/\1/p')"
    total=$((total + bytes))
  done
  stop
  registry_bytes="$(du -cb "$data"/control.db* | tail -1 | cut -f1)"
  echo "| PostgreSQL, $pg_tenants | $(per "$total" "$pg_tenants") (pg_database_size) | $(per "$registry_bytes" "$pg_tenants") | | | |"
fi
