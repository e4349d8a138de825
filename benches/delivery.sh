#!/usr/bin/env bash
# The delivery path end to end on loopback: `gerbang serve` (release, SQLite, log level warn) with
# one SMPP bind to the test SMSC (Perl's Net::SMPP, crates/gerbang-delivery/tests/support/smsc.pl,
# which stamps each submit_sm as it reads it: SMSC_LOG_TIME=1), driven by benches/delivery_load.py.
#
#   bash benches/delivery.sh                          # both parts
#   PARTS=latency RATES="500 2000" RATE_SECONDS=20 bash benches/delivery.sh
#   PARTS=burst BURST=100000 BURST_MAX_PER_SECOND=2000 BURST_WINDOW=50 bash benches/delivery.sh
#   PARTS=surge bash benches/delivery.sh              # a 10x surge against a capped bind (admission)
#
# 1. latency: starts at a constant offered rate (open loop) for RATE_SECONDS each; per destination,
#    the SMSC's receive time of its submit_sm minus the time the request was sent. The bind has no
#    rate cap of ours (LATENCY_MAX_PER_SECOND=0) and the default window (LATENCY_WINDOW=10).
# 2. burst: BURST starts as fast as the server accepts them (64 connections), with the bind capped
#    at BURST_MAX_PER_SECOND; the queue builds up and drains at (at most) the cap. VmRSS of gerbang
#    and the outbox rows still waiting (sqlite3, read-only) are sampled every second.
#
# 3. surge: SURGE_FACTOR times the bind's cap (SURGE_MAX_PER_SECOND) offered for SURGE_SECONDS,
#    purposes mixed as on a peak day (delivery_load.py surge), codes living SURGE_HARD_CAP seconds.
#    Admission refuses the least urgent with 429 queue_full once the queue would hold a new code
#    too long; the report counts accepted, refused, submitted in time, dropped and lost, and the
#    request -> submit_sm wait of the accepted (goal: none expires in the queue, none lost).
#
# The SMS pumping brake is off in every part: the generator never enters its codes, by design, so
# it would brake each block after 100 codes.
#
# Every run gets a fresh data directory and SMSC, so the default rate limits (5 per destination per
# 15 min, 200 per number block per hour) apply unchanged; the load generator spreads destinations
# over 100 numbers per block. Every wait is bounded (the load generator by CLIENT_TIMEOUT, the drain
# by DRAIN_TIMEOUT); processes and the temporary directory are removed on exit (KEEP=1 keeps the
# directory, with the last run's client records, SMSC log and samples). Nothing is asserted: the
# numbers are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
PARTS=${PARTS:-"latency burst"}
RATES=${RATES:-"500 2000"}
RATE_SECONDS=${RATE_SECONDS:-20}
LATENCY_MAX_PER_SECOND=${LATENCY_MAX_PER_SECOND:-0}
LATENCY_WINDOW=${LATENCY_WINDOW:-10}
BURST=${BURST:-100000}
BURST_MAX_PER_SECOND=${BURST_MAX_PER_SECOND:-2000}
BURST_WINDOW=${BURST_WINDOW:-50}
SURGE_MAX_PER_SECOND=${SURGE_MAX_PER_SECOND:-50}
SURGE_FACTOR=${SURGE_FACTOR:-10}
SURGE_SECONDS=${SURGE_SECONDS:-120}
SURGE_HARD_CAP=${SURGE_HARD_CAP:-120}
# SURGE_BACKEND=postgres: the surge runs on a fresh database of the local PostgreSQL (PG, trust auth).
SURGE_BACKEND=${SURGE_BACKEND:-sqlite}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
CONNECTIONS=${CONNECTIONS:-64}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-900}
# After the SMSC has every acknowledged destination, how long to keep watching for late duplicates.
SETTLE=${SETTLE:-5}
PORT=${PORT:-18090}
# TCP_NODELAY on the SMSC's side of the bind (gerbang sets it on its own). Without it the Perl SMSC's
# submit_sm_resp and deliver_sm go out as separate small writes under Nagle's algorithm and the
# second can wait ~40 ms for gerbang's delayed ACK; SMSC_NODELAY=0 measures that.
SMSC_NODELAY=${SMSC_NODELAY:-1}
perl -MNet::SMPP -e 1 2>/dev/null || { echo "needs perl with Net::SMPP: apt-get install libnet-smpp-perl" >&2; exit 1; }
[ "${BUILD:-1}" = 0 ] || cargo build --release --quiet -p gerbang   # BUILD=0: use the binary as it is
BIN=target/release/gerbang
SMSC_SCRIPT=crates/gerbang-delivery/tests/support/smsc.pl
work=$(mktemp -d)
server="" smsc="" sampler=""
stop() { # pid: the process and, for the SMSC, the per-bind children it forked
  local pid=$1
  [ -n "$pid" ] || return 0
  local children
  children=$(pgrep -P "$pid" 2>/dev/null || true)
  kill "$pid" $children 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$sampler"; stop "$server"; stop "$smsc"
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
KEY=$("$BIN" key generate | tail -1)
echo "== SMSC_NODELAY=$SMSC_NODELAY; $(nproc) cores; load before: $(uptime | sed 's/.*load average/load average/')"

# Starts the SMSC and gerbang with an SMPP bind of max_per_second $1 and window $2, then sends one
# warm-up start (the bind is up and every lazy path taken) and sets the SMSC log aside.
boot() {
  rm -rf "$work/data" "$work/smsc.log" "$work/warmup.log"; mkdir -p "$work/data"
  SMSC_LOG_TIME=1 SMSC_NODELAY="$SMSC_NODELAY" perl "$SMSC_SCRIPT" "$work/smsc.log" 0 >"$work/smsc.out" 2>"$work/smsc.err" &
  smsc=$!
  local smsc_port=""
  for _ in $(seq 100); do
    smsc_port=$(sed -n 's/^LISTENING //p' "$work/smsc.out" 2>/dev/null) || true
    [ -n "$smsc_port" ] && break
    sleep 0.1
  done
  GERBANG_DELIVERY__SMS=smpp GERBANG_DELIVERY__SMPP__ADDRESS="127.0.0.1:$smsc_port" \
  GERBANG_DELIVERY__SMPP__SYSTEM_ID=gerbang GERBANG_DELIVERY__SMPP__PASSWORD=secret \
  GERBANG_DELIVERY__SMPP__MAX_PER_SECOND="$1" GERBANG_DELIVERY__SMPP__WINDOW="$2" \
  GERBANG_OTP__PUMPING__ENABLED=false GERBANG_OTP__HARD_CAP_SECONDS="${HARD_CAP:-600}" GERBANG_OTP__LIFETIME_SECONDS="${LIFETIME:-300}" \
  GERBANG_REGISTRY__DEMO_PARTICIPANTS=0 GERBANG_PRIVACY__KEY="$KEY" GERBANG_LOG__FILTER="${LOG_FILTER:-warn}" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$work/data" ${DATABASE_URL:+--database-url "$DATABASE_URL"} >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  curl -fs -o /dev/null -H 'Content-Type: application/json' \
    -d '{"purpose":"registration","channel":"sms","to":"081299995555"}' "127.0.0.1:$PORT/v1/verifications"
  for _ in $(seq 100); do grep -q '^submit ' "$work/smsc.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^submit ' "$work/smsc.log" || { echo "warm-up never reached the SMSC" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.5
  # smsc.pl opens its log for every line, so from here on it writes a fresh file.
  mv "$work/smsc.log" "$work/warmup.log"
}

shutdown() {
  stop "$sampler"; sampler=""
  if grep -E ' (ERROR|WARN) ' "$work/server.log" | grep -v 'personal-data key\|api.clients\|DEVELOPMENT' | head -5; then :; fi
  stop "$server"; server=""
  stop "$smsc"; smsc=""
}

# Waits until the SMSC has seen every acknowledged destination (bounded), then SETTLE seconds more.
drain() {
  local acknowledged=$1 started=$SECONDS n
  while [ $((SECONDS - started)) -lt "$DRAIN_TIMEOUT" ]; do
    n=$(grep -c '^submit ' "$work/smsc.log" 2>/dev/null) || true
    [ "${n:-0}" -ge "$acknowledged" ] && break
    sleep 1
  done
  sleep "$SETTLE"
}

# `sql QUERY`: one line of space-separated values from the run's database (SQLite, read-only;
# the surge part redefines it for PostgreSQL).
sql() { command -v sqlite3 >/dev/null && sqlite3 -readonly -cmd '.timeout 2000' -separator ' ' "$work/data/gerbang.sqlite" "$1" 2>/dev/null; }

# Samples gerbang's VmRSS and the outbox rows waiting (queued, claimed) once a second into
# $work/samples, until gerbang stops.
start_sampler() {
  : >"$work/samples"
  (
    while kill -0 "$server" 2>/dev/null; do
      rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
      queue=$(sql "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'claimed') FROM outbox WHERE status IN ('queued', 'claimed')") || true
      [ -n "$queue" ] || queue="- -"
      echo "$(date +%s.%N) ${rss:-0} $queue" >>"$work/samples"
      sleep 1
    done
  ) &
  sampler=$!
}

acknowledged_in() { awk '$3 >= 200 && $3 < 300' "$1" | wc -l; }

for part in $PARTS; do
  if [ "$part" = latency ]; then
    for rate in $RATES; do
      boot "$LATENCY_MAX_PER_SECOND" "$LATENCY_WINDOW"
      echo "== latency: $rate/s offered for ${RATE_SECONDS}s, $CONNECTIONS connections, bind max_per_second=$LATENCY_MAX_PER_SECOND window=$LATENCY_WINDOW"
      timeout "$CLIENT_TIMEOUT" python3 benches/delivery_load.py rate --port "$PORT" --rate "$rate" --seconds "$RATE_SECONDS" \
        --connections "$CONNECTIONS" --out "$work/client" | sed 's/^/   client: /'
      drain "$(acknowledged_in "$work/client")"
      python3 benches/delivery_report.py latency "$work/client" "$work/smsc.log"
      echo "   load after: $(uptime | sed 's/.*load average/load average/')"
      shutdown
    done
  elif [ "$part" = surge ]; then
    if [ "$SURGE_BACKEND" = postgres ]; then
      pgdb="gerbang_surge_$$"
      psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null
      psql "$PG/postgres" -qc "CREATE DATABASE $pgdb"
      trap 'psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS '"$pgdb"' WITH (FORCE)" >/dev/null 2>&1; cleanup' EXIT
      export DATABASE_URL="$PG/$pgdb"
      sql() { psql "$DATABASE_URL" -AtF ' ' -c "$1" 2>/dev/null; }
    fi
    HARD_CAP=$SURGE_HARD_CAP LIFETIME=$SURGE_HARD_CAP boot "$SURGE_MAX_PER_SECOND" 10
    offered=$((SURGE_MAX_PER_SECOND * SURGE_FACTOR))
    echo "== surge ($SURGE_BACKEND): ${offered}/s offered (${SURGE_FACTOR}x the bind's cap of ${SURGE_MAX_PER_SECOND}/s) for ${SURGE_SECONDS}s, codes live ${SURGE_HARD_CAP}s"
    start_sampler
    timeout "$CLIENT_TIMEOUT" python3 benches/delivery_load.py surge --port "$PORT" --rate "$offered" \
      --seconds "$SURGE_SECONDS" --connections "$CONNECTIONS" --out "$work/client" | sed 's/^/   client: /'
    # Until the outbox holds nothing waiting (bounded), then SETTLE seconds for late submits.
    started=$SECONDS
    while [ $((SECONDS - started)) -lt "$DRAIN_TIMEOUT" ]; do
      waiting=$(sql "SELECT count(*) FROM outbox WHERE status IN ('queued', 'claimed')" || echo 1)
      [ "$waiting" = 0 ] && break
      sleep 1
    done
    sleep "$SETTLE"
    stop "$sampler"; sampler=""
    dropped=$(sql "SELECT count(*) FROM outbox WHERE status = 'dropped'")
    python3 benches/delivery_report.py surge "$work/client" "$work/smsc.log" "$work/samples" "$dropped" "$SURGE_HARD_CAP"
    echo "   load after: $(uptime | sed 's/.*load average/load average/')"
    shutdown
  elif [ "$part" = burst ]; then
    boot "$BURST_MAX_PER_SECOND" "$BURST_WINDOW"
    echo "== burst: $BURST starts, $CONNECTIONS connections, bind max_per_second=$BURST_MAX_PER_SECOND window=$BURST_WINDOW"
    start_sampler
    timeout "$CLIENT_TIMEOUT" python3 benches/delivery_load.py burst --port "$PORT" --count "$BURST" \
      --connections "$CONNECTIONS" --out "$work/client" | sed 's/^/   client: /'
    echo "   load after accepting: $(uptime | sed 's/.*load average/load average/')"
    drain "$(acknowledged_in "$work/client")"
    stop "$sampler"; sampler=""
    python3 benches/delivery_report.py burst "$work/client" "$work/smsc.log" "$work/samples"
    echo "   database: $(du -sh "$work/data" | cut -f1); load after: $(uptime | sed 's/.*load average/load average/')"
    shutdown
  fi
done
