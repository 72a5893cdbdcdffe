#!/usr/bin/env bash
# Benchmarks of silo's request path, on 127.0.0.1 only, in a temporary data directory:
#   scripts/bench.sh http
# Measures, with release builds, an authenticated GET /v1/projects?limit=20 answering 20 rows:
#   (a) silo, one hot tenant          (b) silo, spread uniformly over BENCH_ACTIVE tenants
#   (c) examples/baseline.rs: same query and JWT check, one hard-wired pool, no tenancy
#   (c') the same baseline on silo's tenant pool instead of sqlx's: (a) against it is routing alone
#   (d) tenant B sampled at a fixed rate, alone and while tenant A (free plan) is flooded
# and silo's resident memory with BENCH_TENANTS provisioned and BENCH_ACTIVE pools open.
# Prints one table on stdout; progress goes to stderr.
#
# BENCH_BACKEND=postgres puts every tenant database on the PostgreSQL server at
# BENCH_POSTGRES_URL (its admin role; default postgres://postgres@127.0.0.1:5432/postgres), with
# BENCH_TENANTS and BENCH_ACTIVE 1000 and a server budget of 90 unless set; the baselines then
# serve the hot tenant's database there, and (a) at log level info is not run (a second router
# would need a second share of the tenant role's CONNECTION LIMIT). The tenants' databases and
# roles are dropped at the end.
#
# Environment (defaults in brackets):
#   BENCH_TENANTS [10000]   tenants provisioned      BENCH_ACTIVE [1000]  tenants loaded in (b)
#   BENCH_DURATION [10s]    each measured run        BENCH_WARMUP [2s]    unmeasured lead-in
#   BENCH_ROUNDS [3]        (a), (c) and (a) at log level info alternate this many times,
#                           then (b) and (a) again; medians are reported
#   BENCH_CONNECTIONS [16]  connections of the closed-loop runs and of the flood
#   BENCH_RATE [50]         B's fixed rate in (d), req/s
#   BENCH_SAMPLE_DURATION [20s]  each sample of B in (d) (alone, flooded: BENCH_ROUNDS times)
#   BENCH_PROJECTS [20]     rows each tenant's list returns
#   BENCH_PIN [1]           1: server on CPU 0, load generators on CPU 1 (taskset)
#   BENCH_LOG_LEVEL [warn]  silo's log level while measured
#   BENCH_PORT [18080]      first of five loopback ports used
#   BENCH_SETTLE [60]       seconds to wait, before each run, for other processes to go quiet
#   BENCH_KEEP [0]          1: keep the temporary directory (its path is printed)
# SILO__* variables not set here (e.g. SILO__POOL__MAX_CONNECTIONS_PER_TENANT) reach silo as usual.
#
#   scripts/bench.sh migrate     the migration fan-out over a fleet: see scripts/bench-migrate.sh
#   scripts/bench.sh provision   ms per new tenant, SQLite and PostgreSQL: see scripts/bench-provision.sh
#   scripts/bench.sh suspend     suspend-to-403 across two routers: see scripts/bench-propagation.sh
#   scripts/bench.sh idle        what an idle tenant costs (disk, registry, router): see scripts/bench-idle.sh
#   scripts/bench.sh move        a tenant moved across servers while written to: see scripts/bench-move.sh
set -euo pipefail

usage() { sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  http) ;;
  migrate) exec "$(dirname "$0")/bench-migrate.sh" ;;
  provision) exec "$(dirname "$0")/bench-provision.sh" ;;
  suspend) exec "$(dirname "$0")/bench-propagation.sh" ;;
  idle) exec "$(dirname "$0")/bench-idle.sh" ;;
  move) exec "$(dirname "$0")/bench-move.sh" ;;
  *) usage >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
backend="${BENCH_BACKEND:-sqlite}"
pg="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
case "$backend" in
  sqlite) tenants="${BENCH_TENANTS:-10000}" ;;
  postgres) tenants="${BENCH_TENANTS:-1000}" ;;
  *) echo "bench: BENCH_BACKEND must be sqlite or postgres" >&2; exit 2 ;;
esac
active="${BENCH_ACTIVE:-1000}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
rounds="${BENCH_ROUNDS:-3}"
connections="${BENCH_CONNECTIONS:-16}"
rate="${BENCH_RATE:-50}"
sample_duration="${BENCH_SAMPLE_DURATION:-20s}"
projects="${BENCH_PROJECTS:-20}"
pin="${BENCH_PIN:-1}"
log_level="${BENCH_LOG_LEVEL:-warn}"
port="${BENCH_PORT:-18080}"
keep="${BENCH_KEEP:-0}"
[ "$active" -le "$tenants" ] || active="$tenants"

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# --- prerequisites -----------------------------------------------------------------------------
for tool in cargo curl awk sed sort timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
for n in "$tenants" "$active" "$rounds" "$connections" "$projects" "$port"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "counts and ports must be positive whole numbers (got $n)"
done
server_cpu=() load_cpu=() sampler_prio=()
if [ "$pin" = "1" ]; then
  if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    server_cpu=(taskset -c 0)
    load_cpu=(taskset -c 1)
  else
    say "cannot pin (taskset missing or fewer than 2 CPUs): server and load share every CPU"
  fi
fi
# The fixed-rate sampler wakes 50 times a second; real-time priority keeps the flood generator,
# which shares its CPU, from delaying its sends (that would be the client's latency, not silo's).
if [ "$(id -u)" = "0" ] && command -v chrt >/dev/null 2>&1; then
  sampler_prio=(chrt -f 10)
fi
# Each open SQLite connection holds two or three descriptors: BENCH_ACTIVE pools of up to
# pool.max_connections_per_tenant connections need thousands.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = "unlimited" ] || [ "$(ulimit -n)" -ge $((active * 12 + 1024)) ] ||
  say "ulimit -n is $(ulimit -n): silo may run out of file descriptors with $active pools"
for p in $((port)) $((port + 1)) $((port + 2)) $((port + 3)) $((port + 4)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (set BENCH_PORT)"; fi
done
main_url="http://127.0.0.1:$port"
admin_url="http://127.0.0.1:$((port + 1))"
base_url="http://127.0.0.1:$((port + 2))"
info_url="http://127.0.0.1:$((port + 3))"
base_silo_url="http://127.0.0.1:$((port + 4))"

# --- build -------------------------------------------------------------------------------------
say "building release binaries"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
  --bin silo --example loadgen --example baseline --example bench_setup
bin="${CARGO_TARGET_DIR:-$root/target}/release"
silo="$bin/silo" loadgen="$bin/examples/loadgen"
baseline="$bin/examples/baseline" setup="$bin/examples/bench_setup"

# --- temporary world ---------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/silo-bench.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$backend" = postgres ] && [ -s "$work/databases.txt" ]; then
    say "dropping the PostgreSQL tenant databases"
    "$setup" drop-postgres --server "$pg" --databases "$work/databases.txt" || say "could not drop them all"
  fi
  if [ "$keep" = "1" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/templates"
cp -R "$root"/tenant_templates/* "$work/templates/"
mkdir -p "$work/templates/bench"
cat >"$work/templates/bench/plan.toml" <<'EOF'
# Benchmark plan: limits far above what one machine can send, so they never answer 429.
open_signup = true
requests_per_second = 10000000
burst = 10000000
max_concurrent_requests = 100000
EOF
: >"$work/templates/bench/seed.sql"

export SILO_CONFIG="$root/config.toml"
export SILO__DATA_DIR="$work/data"
export SILO__TEMPLATES_DIR="$work/templates"
if [ "$backend" = postgres ]; then
  export SILO__SERVERS__LOCAL__URL="$pg"
else
  export SILO__SERVERS__LOCAL__URL="sqlite://$work/data/tenants"
fi
export SILO__HTTP__LISTEN="127.0.0.1:$port"
export SILO__ADMIN__LISTEN="127.0.0.1:$((port + 1))"
export SILO__HTTP__SHUTDOWN_GRACE_SECS=5
export SILO__AUTH__ACCESS_TTL_SECS=86400      # tokens issued at setup outlive the whole run
# The server's connection budget, sized as an operator would for this load: every loaded
# tenant's pool (its full size counts) fits, with room for the hot tenant, A and B.
per_tenant="${SILO__POOL__MAX_CONNECTIONS_PER_TENANT:-4}"
# On PostgreSQL the budget is the issue's own: 90 connections for 1,000 tenants, so (b) makes
# room by closing idle pools all the time.
if [ "$backend" = postgres ]; then
  export SILO__SERVERS__LOCAL__MAX_CONNECTIONS="${SILO__SERVERS__LOCAL__MAX_CONNECTIONS:-90}"
else
  export SILO__SERVERS__LOCAL__MAX_CONNECTIONS="${SILO__SERVERS__LOCAL__MAX_CONNECTIONS:-$(((active + 3) * per_tenant))}"
fi
SILO__SECRETS__MASTER_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
BENCH_PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
admin_token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export SILO__SECRETS__MASTER_KEY BENCH_PASSWORD
# For a look afterwards with BENCH_KEEP=1 (the directory is private to this user).
env | grep -E '^(SILO_|BENCH_PASSWORD)' | sed 's/^/export /' >"$work/bench.env"

wait_healthy() { # url pid log
  for _ in $(seq 300); do
    curl -fs "$1/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "server exited at start"; }
    sleep 0.1
  done
  tail -20 "$3" >&2
  die "server not healthy after 30s"
}
stop() { # pid
  kill -TERM "$1" 2>/dev/null || return 0
  timeout 30 tail --pid="$1" -f /dev/null || kill -KILL "$1" 2>/dev/null || true
}
status_of() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8}' /proc/stat; } # all CPUs, irq included
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }        # one process
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
seconds() { # 10s, 500ms, 2m -> seconds
  awk -v d="$1" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; print n }'
}

# --- setup: provision, sign in, projects (a server used only for this) -------------------------
say "provisioning $tenants tenants (+ noisy on plan free, quiet on plan bench) through the admin API"
{
  echo "noisy free owner"
  echo "quiet bench owner"
  for i in $(seq 1 "$tenants"); do
    if [ "$i" -le "$active" ]; then printf 't%05d bench owner\n' "$i"; else printf 't%05d bench none\n' "$i"; fi
  done
} >"$work/tenants.txt"
SILO__ADMIN__TOKEN="$admin_token" SILO__LOG__LEVEL=warn "$silo" serve 2>"$work/setup-silo.log" &
setup_pid=$!
pids+=("$setup_pid")
wait_healthy "$main_url" "$setup_pid" "$work/setup-silo.log"
SILO__ADMIN__TOKEN="$admin_token" timeout 3600 "$setup" provision --admin "$admin_url" \
  --tenants "$work/tenants.txt" --concurrency 8 --databases-out "$work/databases.txt"
say "signing in to $active tenants + noisy + quiet, creating $projects projects in each"
head -n $((active + 2)) "$work/tenants.txt" >"$work/active.txt"
timeout 3600 "$setup" prepare --url "$main_url" --slugs "$work/active.txt" --projects "$projects" \
  --concurrency 8 --out "$work/targets.tsv"
grep -E '^t[0-9]+\.localhost' "$work/targets.tsv" >"$work/spread.tsv"
grep -E '^t0*1\.localhost' "$work/targets.tsv" >"$work/hot.tsv"
grep -E '^noisy\.localhost' "$work/targets.tsv" >"$work/noisy.tsv"
grep -E '^quiet\.localhost' "$work/targets.tsv" >"$work/quiet.tsv"
hot_slug="$(printf 't%05d' 1)"
hot_json="$(curl -fs "$admin_url/admin/v1/tenants/$hot_slug" \
  -H "Authorization: Bearer $admin_token")"
hot_id="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$hot_json")"
hot_db="$(sed -n 's/.*"database":"\([^"]*\)".*/\1/p' <<<"$hot_json")"
[ -n "$hot_id" ] && [ -n "$hot_db" ] || die "could not read $hot_slug's id and database"
stop "$setup_pid"
# The baseline serves a copy of the hot tenant's database (taken with silo stopped), or on
# PostgreSQL the hot tenant's database itself, as the admin role (the tenant role's
# CONNECTION LIMIT is silo's pool).
base_db=(--db "$work/baseline.db")
if [ "$backend" = postgres ]; then
  base_db=(--url "${pg%/*}/$hot_db")
else
  for suffix in "" -wal; do
    [ -f "$work/data/tenants/$hot_db$suffix" ] && cp "$work/data/tenants/$hot_db$suffix" "$work/baseline.db$suffix"
  done
fi

# --- the measured servers: silo (fresh process, no admin listener) and the baseline ------------
say "starting silo and the baseline (log level $log_level)"
SILO__LOG__LEVEL="$log_level" "${server_cpu[@]}" "$silo" serve 2>"$work/silo.log" &
silo_pid=$!
pids+=("$silo_pid")
"${server_cpu[@]}" "$baseline" --listen "127.0.0.1:$((port + 2))" "${base_db[@]}" \
  --tenant-id "$hot_id" --max-connections "$per_tenant" \
  2>"$work/baseline.log" &
base_pid=$!
pids+=("$base_pid")
# The same baseline on silo's tenant pool instead of sqlx's: (a) against it is routing alone.
"${server_cpu[@]}" "$baseline" --listen "127.0.0.1:$((port + 4))" "${base_db[@]}" \
  --tenant-id "$hot_id" --max-connections "$per_tenant" --pool silo \
  2>"$work/baseline-silo-pool.log" &
base_silo_pid=$!
pids+=("$base_silo_pid")
# A second silo at the default log level (info: one line per request, as the contract asks),
# to show what that line costs. It is idle while the others are measured.
SILO__LOG__LEVEL=info SILO__HTTP__LISTEN="127.0.0.1:$((port + 3))" "${server_cpu[@]}" "$silo" serve \
  2>"$work/silo-info.log" &
info_pid=$!
pids+=("$info_pid")
wait_healthy "$main_url" "$silo_pid" "$work/silo.log"
wait_healthy "$info_url" "$info_pid" "$work/silo-info.log"
wait_healthy "$base_url" "$base_pid" "$work/baseline.log"
wait_healthy "$base_silo_url" "$base_silo_pid" "$work/baseline-silo-pool.log"
rss_start_kib="$(status_of "$silo_pid" VmRSS)"

# Same request, same answer: the baseline must return silo's bytes.
hot_token="$(cut -f2 "$work/hot.tsv")"
curl -fs "$main_url/v1/projects?limit=$projects" -H "Host: $hot_slug.localhost" \
  -H "Authorization: Bearer $hot_token" >"$work/silo.json"
curl -fs "$base_url/v1/projects?limit=$projects" -H "Authorization: Bearer $hot_token" >"$work/baseline.json"
cmp -s "$work/silo.json" "$work/baseline.json" || die "the baseline's answer differs from silo's"
rows="$(grep -o '"owner_id"' "$work/silo.json" | wc -l)"
[ "$rows" -eq "$projects" ] || die "expected $projects rows, got $rows"

load() { "${load_cpu[@]}" "$loadgen" --connections "$connections" "$@"; }
# This machine may be shared: before each run, wait (up to BENCH_SETTLE seconds) for a second
# in which other processes use less than a tenth of a CPU. Runs still report what others took.
settle() {
  local b0 b1
  for _ in $(seq "${BENCH_SETTLE:-60}"); do
    b0="$(busy_ticks)"
    sleep 1
    b1="$(busy_ticks)"
    [ $((b1 - b0)) -lt 10 ] && return 0
  done
  say "other processes stayed busy; measuring anyway"
}
# One closed-loop run against the server with pid $2. Appends to the loadgen line the server's
# CPU time per request and how much CPU other processes on the machine took meanwhile.
closed() { # label pid url targets [extra...]
  local label="$1" pid="$2" url="$3" targets="$4" line b0 c0 t0 b1 c1 t1
  shift 4
  settle
  b0="$(busy_ticks)" c0="$(cpu_ticks "$pid")" t0="$(date +%s.%N)"
  line="$(load --label "$label" --url "$url" --targets "$targets" --duration "$duration" --warmup "$warmup" "$@")"
  b1="$(busy_ticks)" c1="$(cpu_ticks "$pid")" t1="$(date +%s.%N)"
  [ "$(field "$line" not_ok)" = "0" ] && [ "$(field "$line" errors)" = "0" ] ||
    die "run $label saw failures: $line"
  line="$line $(awk -v b="$((b1 - b0))" -v c="$((c1 - c0))" -v l="$(field "$line" cpu_ticks)" \
    -v n="$(field "$line" all_requests)" -v t="$(awk -v a="$t0" -v z="$t1" 'BEGIN {print z - a}')" \
    'BEGIN { printf "server_us=%.0f others_pct=%.0f", c * 10000 / n, 100 * (b - c - l) / (t * 100) }') \
threads=$(status_of "$pid" Threads)"
  say "$line"
  echo "$line" >>"$work/results.txt"
}

# Phase 1: only the hot tenant's pool is open. (a) and (c) alternate, so drift on a shared
# machine hits both alike; (a) at log level info runs on the second silo.
for round in $(seq 1 "$rounds"); do
  say "hot tenant, round $round/$rounds"
  closed a "$silo_pid" "$main_url" "$work/hot.tsv"
  closed c "$base_pid" "$base_url" "$work/hot.tsv"
  closed c_silo_pool "$base_silo_pid" "$base_silo_url" "$work/hot.tsv"
  [ "$backend" = postgres ] || closed a_info "$info_pid" "$info_url" "$work/hot.tsv"
done
base_rss_kib="$(status_of "$base_pid" VmRSS)"
stop "$info_pid"
stop "$base_pid"
stop "$base_silo_pid"
# Phase 2: every active tenant's pool is open (the first run warms them). (b) alternates with
# (a) again, which shows what the open pools cost the hot tenant.
for round in $(seq 1 "$rounds"); do
  say "$active tenants, round $round/$rounds"
  if [ "$round" = "1" ]; then
    closed b "$silo_pid" "$main_url" "$work/spread.tsv" --warm-all
  else
    closed b "$silo_pid" "$main_url" "$work/spread.tsv"
  fi
  closed a_open "$silo_pid" "$main_url" "$work/hot.tsv"
done
rss_kib="$(status_of "$silo_pid" VmRSS)"
threads="$(status_of "$silo_pid" Threads)"
pools_open="$(curl -fs "$main_url/metrics" | awk '$1 == "silo_tenant_pools_open" {print $2}')"

# Phase 3: (d), also in alternating rounds, since a p99 of a few thousand samples moves.
sampler() { # label: B at a fixed rate
  "${sampler_prio[@]}" "${load_cpu[@]}" "$loadgen" --label "$1" --url "$main_url" \
    --targets "$work/quiet.tsv" --rate "$rate" --duration "$sample_duration" --warmup "$warmup"
}
flood_secs="$(awk -v w="$(seconds "$warmup")" -v d="$(seconds "$sample_duration")" 'BEGIN {print w + d + 3}')"
for round in $(seq 1 "$rounds"); do
  say "(d) quiet tenant B at $rate req/s, alone, then while noisy A (plan free) is flooded; round $round/$rounds"
  settle
  line="$(sampler b_alone)"
  say "$line"
  echo "$line" >>"$work/results.txt"
  settle
  c0="$(cpu_ticks "$silo_pid")"
  load --label flood --url "$main_url" --targets "$work/noisy.tsv" --duration "${flood_secs}s" \
    --warmup 0s >"$work/flood.txt" &
  flood_pid=$!
  pids+=("$flood_pid")
  sleep 1
  line="$(sampler b_flood)"
  say "$line"
  echo "$line" >>"$work/results.txt"
  wait "$flood_pid"
  c1="$(cpu_ticks "$silo_pid")"
  line="$(cat "$work/flood.txt")"
  line="$line server_us=$(awk -v c="$((c1 - c0))" -v n="$(field "$line" all_requests)" \
    'BEGIN { printf "%.0f", c * 10000 / n }') server_cpu_pct=$(awk -v c="$((c1 - c0))" -v t="$flood_secs" \
    'BEGIN { printf "%.0f", c / t }') share_429=$(awk -v n="$(field "$line" statuses | tr ',' '\n' |
    awk -F: '$1 == 429 {print $2}')" -v t="$(field "$line" requests)" 'BEGIN { printf "%.1f", 100 * n / t }')"
  say "$line"
  echo "$line" >>"$work/results.txt"
done
for label in b_alone b_flood; do
  grep "^label=$label " "$work/results.txt" | grep -qv ' not_ok=0 errors=0 ' &&
    die "tenant B saw failures: $(grep "^label=$label " "$work/results.txt")"
done

# --- the table ---------------------------------------------------------------------------------
median() { # label key: the median of one field over the rounds of one run
  grep "^label=$1 " "$work/results.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
all() { grep "^label=$1 " "$work/results.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | paste -sd/ -; }
row() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }
verdict() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN {
  ok = (op == ">=") ? (x >= t) : (x <= t); print ok ? "met" : "MISSED" }'; }
num() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%.*f", d, x }'; }

a_rps="$(median a rps)" b_rps="$(median b rps)" c_rps="$(median c rps)"
ac="$(awk -v a="$a_rps" -v c="$c_rps" 'BEGIN { printf "%.3f", a / c }')"
ba="$(awk -v a="$a_rps" -v b="$b_rps" 'BEGIN { printf "%.3f", b / a }')"
ac_target=0.95 b_target=">= 0.70: $(verdict "$ba" ">=" 0.70)"
if [ "$backend" = postgres ]; then
  ac_target=0.90
  # Every run stops the benchmark at its first error (see closed), so reaching here is zero.
  b_target="zero errors: met ($(field "$(grep '^label=b ' "$work/results.txt" | tail -1)" all_requests) requests in the last round)"
fi
p99_alone="$(median b_alone p99_ms)" p99_flood="$(median b_flood p99_ms)"
d_ratio="$(awk -v x="$p99_flood" -v y="$p99_alone" 'BEGIN { printf "%.2f", x / y }')"
rss_mb="$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')"

c_sp_rps="$(median c_silo_pool rps)"
acp="$(awk -v a="$a_rps" -v c="$c_sp_rps" 'BEGIN { printf "%.3f", a / c }')"
ai="-"
[ "$backend" = postgres ] || ai="$(awk -v a="$a_rps" -v i="$(median a_info rps)" 'BEGIN { printf "%.3f", i / a }')"
ao="$(awk -v a="$a_rps" -v o="$(median a_open rps)" 'BEGIN { printf "%.3f", o / a }')"
others="$(grep -o 'others_pct=[-0-9]*' "$work/results.txt" | cut -d= -f2 | sort -n |
  awk '{ v[NR] = $1 } END { printf "median %d%%, max %d%%", v[int((NR + 1) / 2)], v[NR] }')"

echo
echo "silo request path, tenants on $backend: GET /v1/projects?limit=$projects ($projects rows); $(nproc) CPUs," \
  "server pinned to CPU 0, load generator to CPU 1 (BENCH_PIN=$pin); closed loops of" \
  "$connections connections, medians of $rounds rounds of $duration; other processes took" \
  "$others of one CPU during those runs; pool.max_connections_per_tenant =" \
  "$per_tenant, servers.local.max_connections = $SILO__SERVERS__LOCAL__MAX_CONNECTIONS"
echo
row "run" "req/s" "p50 ms" "p99 ms" "server CPU us/req" "result" "target"
row "---" "---:" "---:" "---:" "---:" "---" "---"
row "(a) silo, 1 hot tenant" "$(num "$a_rps" 0)" "$(median a p50_ms)" "$(median a p99_ms)" \
  "$(median a server_us)" "(a)/(c) = $ac" ">= $ac_target: $(verdict "$ac" ">=" "$ac_target")"
row "(b) silo, $active tenants, uniform" "$(num "$b_rps" 0)" "$(median b p50_ms)" "$(median b p99_ms)" \
  "$(median b server_us)" "(b)/(a) = $ba" "$b_target"
row "(c) baseline, no tenancy" "$(num "$c_rps" 0)" "$(median c p50_ms)" "$(median c p99_ms)" \
  "$(median c server_us)" "RSS $(awk -v k="$base_rss_kib" 'BEGIN { printf "%.1f", k / 1024 }') MB" ""
row "(c') baseline on silo's tenant pool" "$(num "$c_sp_rps" 0)" "$(median c_silo_pool p50_ms)" \
  "$(median c_silo_pool p99_ms)" "$(median c_silo_pool server_us)" "(a)/(c') = $acp: routing alone" ""
row "(a) with ${pools_open:-?} idle pools open" "$(num "$(median a_open rps)" 0)" "$(median a_open p50_ms)" \
  "$(median a_open p99_ms)" "$(median a_open server_us)" "x$ao of (a)" ""
[ "$backend" = postgres ] ||
  row "(a) with silo at log level info" "$(num "$(median a_info rps)" 0)" "$(median a_info p50_ms)" \
    "$(median a_info p99_ms)" "$(median a_info server_us)" "x$ai of (a)" ""
row "(d) B alone, $rate req/s" "$(num "$(median b_alone rps)" 0)" "$(median b_alone p50_ms)" \
  "$p99_alone" "" "p99 of each round: $(all b_alone p99_ms)" ""
row "(d) B while A is flooded" "$(num "$(median b_flood rps)" 0)" "$(median b_flood p50_ms)" \
  "$p99_flood" "" "p99 x$d_ratio of alone; each round: $(all b_flood p99_ms)" \
  "<= 2x: $(verdict "$d_ratio" "<=" 2)"
row "(d) A flooded, plan free" "$(num "$(median flood rps)" 0)" "$(median flood p50_ms)" \
  "$(median flood p99_ms)" "$(median flood server_us)" \
  "$(median flood share_429)% answered 429; silo at $(median flood server_cpu_pct)% of its CPU" ""
row "silo RSS, $tenants tenants, ${pools_open:-?} pools open" "" "" "" "" \
  "$rss_mb MB ($threads threads; $(awk -v k="$rss_start_kib" 'BEGIN { printf "%.1f", k / 1024 }') MB at start)" \
  "<= 300 MB: $(verdict "$rss_mb" "<=" 300)"
