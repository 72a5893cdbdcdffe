#!/usr/bin/env bash
# Benchmark of moving a tenant while it is written to, run as `scripts/bench.sh move`, with
# release builds: one `silo serve` with three servers (SQLite `local`, SQLite `files`, and
# PostgreSQL `pg` at BENCH_POSTGRES_URL). For each size in BENCH_SIZES a tenant gets that many
# projects, is backed up once (the baseline: one online snapshot, read and sent), then moved
# local -> files -> pg -> local while a client creates projects one after another. Prints, per
# move: its whole time, the switch (how long writes were held off, from the run's
# `switch_ms`), the switch against the backup of the same tenant, the writes made during the
# move, those told to retry (503) and the slowest write. Progress goes to stderr. The tenants'
# PostgreSQL databases go with their tenants; the temporary directory is removed.
#
# Environment (defaults in brackets):
#   BENCH_SIZES [1000 10000 50000]  projects per tenant, one tenant per size (each ends on
#                                   `files`, moved there untimed)
#   BENCH_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/postgres]  the server's admin role
#   BENCH_PORT [18580]   first of two loopback ports used
set -euo pipefail

source "$(dirname "$0")/bench-lib.sh"
sizes="${BENCH_SIZES:-1000 10000 50000}"
pg="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
port="${BENCH_PORT:-18580}"
need cargo curl psql
# shellcheck disable=SC2086
whole $sizes "$port"
ports_free "$port" 2
build --bin silo --example bench_setup

work="$(mktemp -d "${TMPDIR:-/tmp}/silo-bench-move.XXXXXX")"
pid=""
admin="http://127.0.0.1:$((port + 1))"
main="http://127.0.0.1:$port"
cleanup() {
  if [ -n "$pid" ]; then
    # Deleting each tenant drops its PostgreSQL database and role, wherever it is.
    for size in $sizes; do
      curl -s -o /dev/null -X DELETE -H "authorization: Bearer $token" \
        "$admin/admin/v1/tenants/move-$size?confirm=move-$size" || true
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
SILO__SECRETS__MASTER_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export SILO__SECRETS__MASTER_KEY SILO__ADMIN__TOKEN="$token"
mkdir -p "$work/local" "$work/files" "$work/data" "$work/templates/bench"
# A plan of its own: no quota in the way of the fill and the writes, no rate limit.
printf 'requests_per_second = 100000\nburst = 100000\nmax_concurrent_requests = 1000\n' \
  >"$work/templates/bench/plan.toml"
SILO_CONFIG="$root/config.toml" SILO__TEMPLATES_DIR="$work/templates" SILO__LOG__LEVEL=warn \
  SILO__DATA_DIR="$work/data" SILO__SERVERS__LOCAL__URL="sqlite://$work/local" \
  SILO__SERVERS__FILES__URL="sqlite://$work/files" SILO__SERVERS__PG__URL="$pg" \
  SILO__SERVERS__FILES__MAX_CONNECTIONS=60 SILO__SERVERS__PG__MAX_CONNECTIONS=60 \
  SILO__HTTP__LISTEN="127.0.0.1:$port" SILO__ADMIN__LISTEN="127.0.0.1:$((port + 1))" \
  "$silo" serve 2>"$work/silo.log" &
pid=$!
for _ in $(seq 100); do curl -fs "$main/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$main/readyz" >/dev/null || die "silo did not start: $(tail -5 "$work/silo.log")"

admin_post() { curl -fs -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2" "$admin$1"; }
field() { sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" | head -1; }

# writes SLUG TOKEN OUT: creates projects one after another until $work/stop exists; one line
# per write in OUT: "<status> <seconds>".
writes() {
  local n=0
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "host: $1.localhost" \
      -H "authorization: Bearer $2" -H 'content-type: application/json' \
      -d "{\"name\":\"during $n\"}" "$main/v1/projects" >>"$3"
  done
}

echo "| projects | move | whole move s | switch ms | switch / backup | writes during | told to retry | slowest write ms |"
echo "|---|---|---|---|---|---|---|---|"
for size in $sizes; do
  slug="move-$size"
  say "tenant $slug: $size projects"
  admin_post /admin/v1/tenants "{\"slug\":\"$slug\",\"server\":\"local\",\"plan\":\"bench\",\"owner_email\":\"owner@$slug.test\",\"owner_password\":\"owner-password\"}" >/dev/null \
    || die "could not create $slug"
  # The projects straight into its file, the only tenant on `local` now (as the http
  # benchmark fills its tenants); no request has opened its pool yet.
  "$setup" fill --dir "$work/local" --rows "$size" 2>/dev/null
  access="$(curl -fs -H "host: $slug.localhost" -H 'content-type: application/json' \
    -d "{\"email\":\"owner@$slug.test\",\"password\":\"owner-password\"}" "$main/v1/auth/login" | field access_token)"
  [ -n "$access" ] || die "could not log in to $slug"
  backup_s="$(curl -fs -o "$work/backup" -w '%{time_total}' -X POST -H "authorization: Bearer $token" \
    "$admin/admin/v1/tenants/$slug/backup")"
  for to in files pg local; do
    rm -f "$work/stop" "$work/writes"
    touch "$work/writes"
    writes "$slug" "$access" "$work/writes" &
    writer=$!
    sleep 1
    moved="$(curl -s -o "$work/moved" -w '%{http_code} %{time_total}' -H "authorization: Bearer $token" \
      -H 'content-type: application/json' -d "{\"to\":\"$to\"}" "$admin/admin/v1/tenants/$slug/move")"
    sleep 1
    touch "$work/stop"
    wait "$writer"
    [ "${moved%% *}" = 200 ] || die "move of $slug to $to: $moved $(cat "$work/moved")"
    # The newest run first: this move's.
    switch="$(curl -fs -H "authorization: Bearer $token" "$admin/admin/v1/tenants/$slug/runs" \
      | grep -o '"switch_ms":[0-9]*' | head -1 | cut -d: -f2)"
    awk -v size="$size" -v to="$to" -v whole="${moved#* }" -v held="$switch" -v backup="$backup_s" '
      { n++; if ($1 == 503) retried++; else if ($1 != 201) { bad++; other = $1 } if ($2 > slowest) slowest = $2 }
      END {
        if (bad) { print "bench: " bad " writes failed otherwise (" other ")" > "/dev/stderr"; exit 1 }
        printf "| %d | to %s | %.2f | %d | %.2f | %d | %d | %.0f |\n",
          size, to, whole, held, held / 1000 / backup, n, retried, slowest * 1000
      }' "$work/writes"
  done
  # Off `local`, untimed, so the next tenant is the only one there when it is filled.
  admin_post "/admin/v1/tenants/$slug/move" '{"to":"files"}' >/dev/null || die "could not move $slug off local"
done
