#!/usr/bin/env bash
# HTTP load run of the verification API on loopback: first starts (POST /v1/verifications), then
# checks of the right codes (POST /v1/verifications/{id}/check), with wrk.
#
#   BACKENDS="sqlite postgres" START_DURATION=30 CHECK_DURATION=5 CONNECTIONS=64 bash benches/verify.sh
#   BIN=/tmp/gerbang-before bash benches/verify.sh   # another build, not built here
#
# Every 2xx was committed durably before it was sent: SQLite with synchronous=FULL (fsync per group
# commit), PostgreSQL with synchronous_commit on. Each run is bounded in time (the durations) and
# so in count. The server runs release-built, with logging at warn, on 127.0.0.1:${PORT:-18080}.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-sqlite}
# Starts run longer than checks so that every check is a first check of a fresh code (a replay
# answers 409 and is counted under non2xx).
START_DURATION=${START_DURATION:-30}
CHECK_DURATION=${CHECK_DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
PORT=${PORT:-18080}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
# BIN=path/to/gerbang compares another build (e.g. the previous commit's) on the same machine.
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
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
for backend in $BACKENDS; do
  rm -rf "$work/data"; mkdir -p "$work/data"
  url=""
  if [ "$backend" = postgres ]; then
    pgdb="gerbang_bench_$$"
    dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb"; createdb -h 127.0.0.1 -U postgres "$pgdb"
    url="$PG/$pgdb"
  fi
  GERBANG_STORAGE__DATA_DIR="$work/data" GERBANG_STORAGE__DATABASE_URL="$url" \
  GERBANG_SERVER__LISTEN="127.0.0.1:$PORT" GERBANG_REGISTRY__DEMO_PARTICIPANTS=0 \
  GERBANG_STORAGE__MAX_CONNECTIONS=${MAX_CONNECTIONS:-16} \
  GERBANG_LOG__FILTER=warn "$BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  echo "== $backend: start, ${START_DURATION}s, $CONNECTIONS connections, $THREADS wrk thread(s)"
  result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${START_DURATION}s" -s benches/wrk/start.lua "http://127.0.0.1:$PORT" | tail -1)
  echo "$result"
  started=$(echo "$result" | sed -E 's/.*requests=([0-9]+).*/\1/')
  # Let the delivery worker drain: every acknowledged start must reach the inbox.
  for _ in $(seq 300); do
    n=$(curl -fs "127.0.0.1:$PORT/dev/inbox.json?limit=200000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' || echo 0)
    [ "$n" -ge "$started" ] && break
    sleep 1
  done
  curl -fs "127.0.0.1:$PORT/dev/inbox.json?limit=200000" \
    | python3 -c 'import json,re,sys
for m in json.load(sys.stdin):
    code = re.search(r"\b(\d{6})\b", m["text"]).group(1)
    print(m["verification"], code)' | shuf > "$work/pairs"
  echo "   codes delivered: $(wc -l < "$work/pairs")"
  echo "== $backend: check, ${CHECK_DURATION}s, $CONNECTIONS connections"
  PAIRS="$work/pairs" THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d"${CHECK_DURATION}s" -s benches/wrk/check.lua "http://127.0.0.1:$PORT" | tail -1
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  if grep -E ' (ERROR|WARN) ' "$work/server.log" | grep -v 'personal-data key\|api.clients\|DEVELOPMENT' | head -5; then :; fi
  if [ "$backend" = postgres ]; then dropdb -h 127.0.0.1 -U postgres "$pgdb"; pgdb=""; fi
done
