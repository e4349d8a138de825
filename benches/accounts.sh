#!/usr/bin/env bash
# The account API under load, on loopback, against raw Argon2id on the same machine:
#
#   BACKENDS="sqlite postgres" ACCOUNTS=200 LOGIN_DURATION=20 CONNECTIONS=8 ROUNDS=3 bash benches/accounts.sh
#
# 1. Registration end to end, one participant after the other (identify, contact and password, the
#    code read off the development inbox, confirm): p50/p99 per registration.
# 2. Login throughput: wrk POSTs /v1/accounts/login with right passwords from trusted devices (one
#    per account: the engine allows 20 codes per device and hour), so
#    each answer is one Argon2id verification plus a new session written durably.
# 3. Raw Argon2id with the same parameters on as many threads as cores
#    (cargo bench -p gerbang-core --bench password), alternating with the login runs.
# Argon2id runs at the configured defaults (m = 19 MiB, t = 2, p = 1); captcha in test mode.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-sqlite}
ACCOUNTS=${ACCOUNTS:-200}
LOGIN_DURATION=${LOGIN_DURATION:-20}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-8}
PORT=${PORT:-18081}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/gerbang
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "${pgdb:-}" ] && dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$BIN" participants generate --count $((ACCOUNTS * 2)) --seed 7 -o "$work/participants.csv"
# Every request comes from 127.0.0.1: lift the per-address lookup limit (120 an hour by default).
cat > "$work/gerbang.toml" <<TOML
[[accounts.lookup_limits]]
key = "nik"
limit = 10
window_seconds = 3600
penalty_seconds = 3600
TOML
export GERBANG_CONFIG="$work/gerbang.toml"
for backend in $BACKENDS; do
  rm -rf "$work/data"; mkdir -p "$work/data"
  url=""
  if [ "$backend" = postgres ]; then
    pgdb="gerbang_bench_$$"
    dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb"; createdb -h 127.0.0.1 -U postgres "$pgdb"
    url="$PG/$pgdb"
  fi
  export GERBANG_STORAGE__DATA_DIR="$work/data" GERBANG_STORAGE__DATABASE_URL="$url" \
    GERBANG_SERVER__LISTEN="127.0.0.1:$PORT" GERBANG_REGISTRY__DEMO_PARTICIPANTS=0 \
    GERBANG_ACCOUNTS__CAPTCHA__MODE=test GERBANG_ACCOUNTS__CAPTCHA__TEST_ANSWER=ok \
    GERBANG_LOG__FILTER=warn
  "$BIN" participants import "$work/participants.csv" >/dev/null
  "$BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  echo "== $backend: $ACCOUNTS registrations, one after the other"
  python3 benches/accounts_load.py "http://127.0.0.1:$PORT" "$work/participants.csv" "$work/niks" "$ACCOUNTS"
  # Login and raw Argon2id alternate, ROUNDS times: on a shared machine each ratio then compares
  # neighbouring moments.
  for round in $(seq "$ROUNDS"); do
    echo "== $backend: login, ${LOGIN_DURATION}s, $CONNECTIONS connections (round $round)"
    NIKS="$work/niks" wrk -t1 -c"$CONNECTIONS" -d"${LOGIN_DURATION}s" -s benches/wrk/login.lua "http://127.0.0.1:$PORT" | tail -1
    echo "== raw Argon2id on this machine, same parameters, while the server idles (round $round)"
    cargo bench -p gerbang-core --bench password 2>/dev/null | grep -E 'raw'
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  if grep -E ' (ERROR|WARN) ' "$work/server.log" | grep -v 'personal-data key\|api.clients\|DEVELOPMENT\|test mode' | head -5; then :; fi
  if [ "$backend" = postgres ]; then dropdb -h 127.0.0.1 -U postgres "$pgdb"; pgdb=""; fi
  unset GERBANG_STORAGE__DATABASE_URL
done
