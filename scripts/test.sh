#!/usr/bin/env bash
# The whole test suite, on both backends:
#   1. `cargo test`: unit and integration tests, registry and tenants on SQLite (the embedded
#      default), plus the tests that need PostgreSQL themselves (statements, pools, several
#      routers, tenant databases and roles, a second cluster for placement and faults);
#   2. the API suite again with every test's registry in a PostgreSQL database of its own
#      (`SILO_TEST_REGISTRY=postgres`);
#   3. the API suite again with every tenant database on PostgreSQL, on a cluster made for the
#      pass (initdb and pg_ctl in a temporary directory) and removed after it
#      (`SILO_TEST_TENANT_SERVER`); tests that inspect SQLite tenant files say so and return.
# PostgreSQL: SILO_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres. Where
# it does not answer, the PostgreSQL parts skip and say why; under SILO_REQUIRE_POSTGRES=1 (CI)
# that is a failure. Arguments go to both cargo runs (say, a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

url="${SILO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Pass 3 on a cluster of its own, so the thousands of tenant databases it makes go with it.
tenant_pass() {
  local bin dir port as_owner=()
  bin="$(pg_config --bindir 2>/dev/null || dirname "$(command -v initdb)")"
  [ -x "$bin/initdb" ] || { echo "test: no initdb for the tenant pass" >&2; return 1; }
  dir="$(mktemp -d "${TMPDIR:-/tmp}/silo-test-cluster.XXXXXX")"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$dir"
    as_owner=(runuser -u postgres --)
  fi
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  # shellcheck disable=SC2064
  trap "${as_owner[*]} '$bin/pg_ctl' -D '$dir/data' -m immediate -w stop >/dev/null 2>&1; rm -rf '$dir'" EXIT
  "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  echo "test: the API suite again, with every tenant database on PostgreSQL (port $port)" >&2
  SILO_TEST_TENANT_SERVER="postgres://postgres@127.0.0.1:$port/postgres" cargo test --test api "$@"
}

cargo test "$@"

reachable=0
if command -v pg_isready >/dev/null 2>&1; then
  pg_isready -q -d "$url" && reachable=1
elif command -v psql >/dev/null 2>&1; then
  psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1 && reachable=1
fi
if [ "$reachable" = 1 ]; then
  echo "test: the API suite again, with the registry on PostgreSQL ($url)" >&2
  SILO_TEST_REGISTRY=postgres cargo test --test api "$@"
  tenant_pass "$@"
elif [ "${SILO_REQUIRE_POSTGRES:-0}" = 1 ]; then
  echo "test: PostgreSQL is required but does not answer at $url" >&2
  exit 1
else
  echo "test: skipped the PostgreSQL pass: nothing answers at $url (set SILO_TEST_POSTGRES_URL)" >&2
fi
