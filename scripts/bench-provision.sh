#!/usr/bin/env bash
# Benchmark of provisioning, run as `scripts/bench.sh provision`, with a release build: tenants
# created one after another through the admin API (POST /admin/v1/tenants), each timed by curl
# from request to answer, on
#   (1) SQLite, no owner   (2) SQLite, with an owner (one argon2id hash, the shipped cost)
#   (3) PostgreSQL, no owner   (4) PostgreSQL, with an owner
# Prints p50 and p95 in ms of each on stdout, then the mean ms of each phase (from silo's
# silo_provisioning_phase_duration_seconds); progress goes to stderr. The first tenant of each
# run (which builds the template) is counted apart. PostgreSQL tenants (databases and roles) are
# dropped once both PostgreSQL runs are done, so the second run does not share the server's disk
# with the first one's drops.
#
# Environment (defaults in brackets):
#   BENCH_TENANTS [100]   tenants per run
#   BENCH_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/postgres]  the admin role of the
#                         PostgreSQL server; empty: SQLite runs only
#   BENCH_PORT [18380]    first of two loopback ports used
set -euo pipefail

source "$(dirname "$0")/bench-lib.sh"
count="${BENCH_TENANTS:-100}"
pg="${BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}"
port="${BENCH_PORT:-18380}"
need cargo curl awk sort
whole "$count" "$port"
ports_free "$port" 2
build --bin silo --example bench_setup
work="$(mktemp -d "${TMPDIR:-/tmp}/silo-bench-provision.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$pg" ] && cat "$work"/postgres*/databases >"$work/databases.txt" 2>/dev/null && [ -s "$work/databases.txt" ]; then
    say "dropping the PostgreSQL tenant databases"
    "$setup" drop-postgres --server "$pg" --databases "$work/databases.txt" || say "could not drop them all"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
admin="http://127.0.0.1:$((port + 1))"

# Phase sums and counts from silo's metrics: "phase sum count" lines.
phases() {
  curl -fs "http://127.0.0.1:$port/metrics" | awk '
    /^silo_provisioning_phase_duration_seconds_(sum|count)\{/ {
      match($0, /phase="[a-z_]+"/); phase = substr($0, RSTART + 7, RLENGTH - 8)
      if ($0 ~ /_sum\{/) sum[phase] = $2; else count[phase] = $2
    }
    END { for (p in sum) print p, sum[p], count[p] }' | sort
}

# run LABEL SERVER_URL OWNER(0|1): prints "LABEL p50 p95 first" (ms); the phases of the tenants
# after the first go to $work/LABEL/phases.
run() {
  local label="$1" server="$2" owner="$3" data="$work/$1"
  mkdir -p "$data"
  SILO_CONFIG="$root/config.toml" SILO__TEMPLATES_DIR="$root/tenant_templates" SILO__LOG__LEVEL=warn \
    SILO__DATA_DIR="$data" SILO__SERVERS__LOCAL__URL="$server" SILO__ADMIN__TOKEN="$token" \
    SILO__HTTP__LISTEN="127.0.0.1:$port" SILO__ADMIN__LISTEN="127.0.0.1:$((port + 1))" \
    "$silo" serve 2>"$data/serve.log" &
  server_pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  local slug body i
  for i in $(seq 0 "$count"); do
    slug="$(printf 'b%s-%05d' "$label" "$i" | tr -c 'a-z0-9-' '-')"
    body="{\"slug\":\"$slug\"}"
    [ "$owner" = 1 ] && body="{\"slug\":\"$slug\",\"owner_email\":\"owner@x.test\",\"owner_password\":\"owner-password\"}"
    curl -s -o "$data/last.json" -w '%{http_code} %{time_total}\n' -H "authorization: Bearer $token" \
      -H 'content-type: application/json' -d "$body" "$admin/admin/v1/tenants" >>"$data/times"
    # (The answer has no final newline, which sed would keep.)
    printf '%s\n' "$(sed -n 's/.*"database":"\([^"]*\)".*/\1/p' "$data/last.json")" >>"$data/databases"
    [ "$i" = 0 ] && phases >"$data/phases-first"
  done
  phases >"$data/phases-all"
  # Mean ms per tenant of each phase, the first tenant's taken out.
  awk -v n="$count" 'NR == FNR { first[$1] = $2; next } { printf "%s %.1f\n", $1, ($2 - first[$1]) * 1000 / n }' \
    "$data/phases-first" "$data/phases-all" >"$data/phases"
  awk '$1 != 201 { bad++ } END { exit bad > 0 }' "$data/times" || die "$label: not every tenant was created: $(cat "$data/last.json")"
  kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  local first
  first="$(head -1 "$data/times" | awk '{ printf "%.1f", $2 * 1000 }')"
  tail -n +2 "$data/times" | awk '{ print $2 * 1000 }' | sort -n | awk -v label="$label" -v first="$first" \
    '{ v[NR] = $1 } END { printf "| %s | %d | %.1f | %.1f | %s |\n", label, NR, v[int((NR + 1) / 2)], v[int(NR * 0.95 + 0.999)], first }'
}

echo "| run | tenants | p50 ms | p95 ms | first (template) ms |"
echo "|---|---|---|---|---|"
say "SQLite"
run sqlite "sqlite://$work/tenants" 0
run sqlite-owner "sqlite://$work/tenants-owner" 1
runs=(sqlite sqlite-owner)
if [ -n "$pg" ]; then
  say "PostgreSQL at ${pg%%@*}@..."
  run postgres "$pg" 0
  run postgres-owner "$pg" 1
  runs+=(postgres postgres-owner)
fi

echo
all_phases=(registry lock database schema seed owner_hash owner)
printf '| phase, mean ms |'; printf ' %s |' "${runs[@]}"; echo
printf '|---|'; printf -- '---|%.0s' "${runs[@]}"; echo
for phase in "${all_phases[@]}"; do
  printf '| %s |' "$phase"
  for label in "${runs[@]}"; do
    printf ' %s |' "$(awk -v p="$phase" '$1 == p { print $2; found = 1 } END { if (!found) print "-" }' "$work/$label/phases")"
  done
  echo
done
