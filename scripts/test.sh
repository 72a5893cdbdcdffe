#!/usr/bin/env bash
# The whole test suite, on both registry backends:
#   1. `cargo test`: unit and integration tests, registry on SQLite (the embedded default), plus
#      the tests that need PostgreSQL themselves (statements, pools, several routers);
#   2. the API suite again with every test's registry in a PostgreSQL database of its own
#      (`SILO_TEST_REGISTRY=postgres`).
# PostgreSQL: SILO_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres. Where
# it does not answer, the PostgreSQL parts skip and say why; under SILO_REQUIRE_POSTGRES=1 (CI)
# that is a failure. Arguments go to both cargo runs (say, a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

url="${SILO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
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
elif [ "${SILO_REQUIRE_POSTGRES:-0}" = 1 ]; then
  echo "test: PostgreSQL is required but does not answer at $url" >&2
  exit 1
else
  echo "test: skipped the PostgreSQL pass: nothing answers at $url (set SILO_TEST_POSTGRES_URL)" >&2
fi
