#!/usr/bin/env bash
# The staff console's participant search under load (issue 15), with N synthetic participants
# (default 1,000,000) imported: a signed-in agent POSTs /staff/participants for random NIKs, each
# search answered with the masked profile, account and delivery trail and appended to the audit
# log. Paced at 200 searches/s (10 connections, one each 50 ms), then as fast as it answers.
#
#   bash benches/console.sh                       # SQLite
#   BACKENDS="sqlite postgres" N=1000000 bash benches/console.sh
#   BIN=target/release/gerbang bash benches/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-sqlite}
N=${N:-1000000}
DURATION=${DURATION:-20}
PORT=${PORT:-18082}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p gerbang
  BIN=target/release/gerbang
fi
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "${pgdb:-}" ] && dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export GERBANG_PRIVACY__KEY=${GERBANG_PRIVACY__KEY:-Z2VyYmFuZy1iZW5jaC1rZXktMDEyMzQ1Njc4OWFiY2Q=}
"$BIN" participants generate --count "$N" --seed 7 -o "$work/participants.csv" 2>/dev/null
# The NIK is the first column; 10,000 of them to search for.
tail -n +2 "$work/participants.csv" | cut -d, -f1 | shuf -n 10000 --random-source=<(yes) > "$work/niks.txt"
PASSWORD="Bench-Console#2026"
for backend in $BACKENDS; do
  rm -rf "$work/data"; mkdir -p "$work/data"
  url=""
  if [ "$backend" = postgres ]; then
    pgdb="gerbang_bench_console_$$"
    dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb"; createdb -h 127.0.0.1 -U postgres "$pgdb"
    url="$PG/$pgdb"
  fi
  export GERBANG_STORAGE__DATA_DIR="$work/data" GERBANG_STORAGE__DATABASE_URL="$url"
  start=$(date +%s.%N)
  "$BIN" participants import "$work/participants.csv" >/dev/null 2>&1
  echo "== $backend: imported $N participants in $(echo "$(date +%s.%N) - $start" | bc) s"
  secret=$(echo "$PASSWORD" | "$BIN" staff add --name bench-agent --role agent --password-stdin --by bench \
    | sed -n 's/^  authenticator secret: //p')
  GERBANG_SERVER__LISTEN="127.0.0.1:$PORT" GERBANG_REGISTRY__DEMO_PARTICIPANTS=0 \
  GERBANG_LOG__FILTER=warn "$BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  eval "$(python3 benches/console_setup.py "http://127.0.0.1:$PORT" bench-agent "$PASSWORD" "$secret")"
  export COOKIE CSRF NIKS="$work/niks.txt"
  paced=$(DELAY_MS=50 wrk -t1 -c10 -d"${DURATION}s" -s benches/wrk/search.lua "http://127.0.0.1:$PORT" | tail -1)
  flat=$(DELAY_MS=0 wrk -t1 -c16 -d"${DURATION}s" -s benches/wrk/search.lua "http://127.0.0.1:$PORT" | tail -1)
  echo "== $backend search paced (200/s): $paced"
  echo "== $backend search flat out: $flat"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  if [ "$backend" = postgres ]; then dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb"; pgdb=""; fi
done
