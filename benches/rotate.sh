#!/usr/bin/env bash
# Key rotation benchmark (not a test): import N synthetic participants under one personal-data key,
# then run `gerbang key rotate` to a new key, on a fresh SQLite file and a fresh PostgreSQL database;
# report the re-sealing rate per table, wall time and peak memory (RSS). docs/keys.md.
#
#   bash benches/rotate.sh                     # N=1000000, both backends, the command's defaults
#   N=200000 BACKENDS=sqlite BATCH=2000 PAUSE_MS=0 bash benches/rotate.sh
#   SERVING=1 RATE=200 bash benches/rotate.sh  # beside `gerbang serve` (both keys) taking RATE
#                                              # code requests/s: HTTP latency before and during
#
# The rotation's wait for codes sent under the old key (one hard cap) is set to 1 s: nothing was
# sent. Loopback only; the PostgreSQL database is created for the run and dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
BATCH=${BATCH:-}
PAUSE_MS=${PAUSE_MS:-}
PG=${PG:-postgres://postgres@127.0.0.1:5432}

cargo build --release -q -p gerbang
bin=target/release/gerbang
work=$(mktemp -d)
old=$("$bin" key generate)
new=$("$bin" key generate)

echo "generating $N participants"
"$bin" participants generate --count "$N" --seed 1 -o "$work/participants.csv" 2>/dev/null

rotate() {
  local label=$1; shift
  GERBANG_PRIVACY__KEY=$old "$bin" participants import "$work/participants.csv" "$@" >/dev/null 2>&1
  GERBANG_PRIVACY__KEY=$new GERBANG_PRIVACY__PREVIOUS_KEY=$old \
    GERBANG_OTP__HARD_CAP_SECONDS=1 GERBANG_OTP__LIFETIME_SECONDS=1 \
    /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" \
    "$bin" key rotate ${BATCH:+--batch "$BATCH"} ${PAUSE_MS:+--pause-ms "$PAUSE_MS"} "$@" 2>"$work/rotate.txt" >"$work/out.txt"
  grep -E "^  participants|wall" "$work/rotate.txt"
  cat "$work/out.txt"
  GERBANG_PRIVACY__KEY=$new "$bin" participants show --nik "$(sed -n 2p "$work/participants.csv" | cut -d, -f1)" "$@" >/dev/null 2>&1 \
    && echo "$label: a participant is found under the new key alone"
}

SERVING=${SERVING:-}
RATE=${RATE:-200}
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

# The HTTP answer times of the requests sent between two instants (from delivery_load.py's file).
window() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
times, statuses = [], {}
for line in open(path):
    to, sent, status, answered = line.split()[:4]
    if start <= float(sent) <= end:
        statuses[status] = statuses.get(status, 0) + 1
        times.append((float(answered) - float(sent)) * 1000)
times.sort()
pick = lambda p: times[min(len(times) - 1, int(p * len(times)))] if times else float("nan")
print(f"requests={len(times)} statuses={statuses} http_p50_ms={pick(0.5):.2f} "
      f"http_p99_ms={pick(0.99):.2f} http_max_ms={times[-1] if times else float('nan'):.2f}")
PY
}

serving() {
  local label=$1; shift
  GERBANG_PRIVACY__KEY=$old "$bin" participants import "$work/participants.csv" "$@" >/dev/null 2>&1
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  GERBANG_PRIVACY__KEY=$new GERBANG_PRIVACY__PREVIOUS_KEY=$old GERBANG_REGISTRY__DEMO_PARTICIPANTS=0 \
    GERBANG_OTP__PUMPING__ENABLED=false GERBANG_LOG__FILTER=warn \
    "$bin" serve --listen "127.0.0.1:$port" "$@" >"$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -fs "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  echo "$label, before the rotation (both keys configured): $(python3 benches/delivery_load.py rate --port "$port" --rate "$RATE" --seconds 10 --out "$work/before.txt")"
  local started finished
  started=$(date +%s.%N)
  ( GERBANG_PRIVACY__KEY=$new GERBANG_PRIVACY__PREVIOUS_KEY=$old \
      GERBANG_OTP__HARD_CAP_SECONDS=1 GERBANG_OTP__LIFETIME_SECONDS=1 \
      "$bin" key rotate ${BATCH:+--batch "$BATCH"} ${PAUSE_MS:+--pause-ms "$PAUSE_MS"} "$@" 2>"$work/rotate.txt" >/dev/null
    date +%s.%N >"$work/rotated_at" ) &
  local rotation=$! offset=100000
  # The load runs in 10 s rounds until the rotation has finished.
  : >"$work/during.txt"
  while kill -0 "$rotation" 2>/dev/null; do
    python3 benches/delivery_load.py rate --port "$port" --rate "$RATE" --seconds 10 --offset "$offset" --out "$work/round.txt" >/dev/null
    cat "$work/round.txt" >>"$work/during.txt"
    offset=$((offset + RATE * 10))
  done
  wait "$rotation"
  finished=$(cat "$work/rotated_at")
  grep -E "^  participants .*rows/s" "$work/rotate.txt"
  echo "$label, during the rotation: $(window "$work/during.txt" "$started" "$finished")"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

for backend in $BACKENDS; do
  case $backend in
    sqlite)
      if [ -n "$SERVING" ]; then serving "sqlite" --data-dir "$work/sqlite"
      else rotate "sqlite rotation" --data-dir "$work/sqlite"; fi
      ;;
    postgres)
      db="gerbang_bench_$$"
      psql "$PG/postgres" -qc "CREATE DATABASE $db"
      trap '[ -n "$server" ] && kill "$server" 2>/dev/null; psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS '"$db"' WITH (FORCE)" >/dev/null 2>&1; rm -rf "$work"' EXIT
      if [ -n "$SERVING" ]; then serving "postgres" --database-url "$PG/$db" --data-dir "$work/pg"
      else rotate "postgres rotation" --database-url "$PG/$db" --data-dir "$work/pg"; fi
      ;;
  esac
done
