# Shared by scripts/bench-*.sh (sourced, not run): messages, checks of the environment and of
# counts, and the release build of what a benchmark runs.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# need TOOL...: each must be on PATH.
need() {
  local tool
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || die "$tool is required"; done
}

# whole N...: each a positive whole number (counts, ports).
whole() {
  local n
  for n in "$@"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "counts and ports must be positive whole numbers (got $n)"
  done
}

# ports_free FIRST COUNT: nothing listens on 127.0.0.1 ports FIRST .. FIRST+COUNT-1.
ports_free() {
  local p
  for p in $(seq "$1" $(($1 + $2 - 1))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (set BENCH_PORT)"; fi
  done
}

# build CARGO_ARGS...: a quiet release build; sets bin (the release directory), silo and setup.
build() {
  say "building release binaries"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" "$@"
  bin="${CARGO_TARGET_DIR:-$root/target}/release"
  silo="$bin/silo" setup="$bin/examples/bench_setup"
}
