#!/usr/bin/env bash
# Provision one tenant with the same routine and flags as `silo tenant create`:
#   scripts/provision-tenant.sh <slug> [--name N] [--plan P] [--server S] [--domain D]... \
#       [--owner-email E --owner-password-stdin] [--config PATH]
# Re-running it for a tenant left in `provisioning` by a failed run finishes the job.
# Uses $SILO_BIN when set, else builds silo with cargo. Exit codes are silo's: 0, 1, 2.
set -euo pipefail

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  usage
  exit 0
fi
if [ $# -lt 1 ]; then
  usage >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SILO_BIN:-}"
if [ -z "$bin" ]; then
  command -v cargo >/dev/null 2>&1 || { echo "provision-tenant: cargo not found; install Rust or set SILO_BIN" >&2; exit 2; }
  cargo build --quiet --manifest-path "$root/Cargo.toml" --bin silo
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/silo"
fi
[ -x "$bin" ] || { echo "provision-tenant: $bin is not an executable" >&2; exit 2; }

exec "$bin" tenant create "$@"
