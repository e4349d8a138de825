#!/usr/bin/env bash
# Key rotation benchmark (not a test): import N synthetic participants under one personal-data key,
# then run `gerbang key rotate` to a new key, on a fresh SQLite file and a fresh PostgreSQL database;
# report the re-sealing rate per table, wall time and peak memory (RSS). docs/keys.md.
#
#   bash benches/rotate.sh                     # N=1000000, both backends, 500 rows per transaction
#   N=200000 BACKENDS=sqlite BATCH=2000 bash benches/rotate.sh
#
# The rotation's wait for codes sent under the old key (one hard cap) is set to 1 s: nothing was
# sent. Loopback only; the PostgreSQL database is created for the run and dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
BATCH=${BATCH:-500}
PG=${PG:-postgres://postgres@127.0.0.1:5432}

cargo build --release -q -p gerbang
bin=target/release/gerbang
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
    "$bin" key rotate --batch "$BATCH" "$@" 2>"$work/rotate.txt" >"$work/out.txt"
  grep -E "^  participants|wall" "$work/rotate.txt"
  cat "$work/out.txt"
  GERBANG_PRIVACY__KEY=$new "$bin" participants show --nik "$(sed -n 2p "$work/participants.csv" | cut -d, -f1)" "$@" >/dev/null 2>&1 \
    && echo "$label: a participant is found under the new key alone"
}

for backend in $BACKENDS; do
  case $backend in
    sqlite)
      rotate "sqlite rotation" --data-dir "$work/sqlite"
      ;;
    postgres)
      db="gerbang_bench_$$"
      psql "$PG/postgres" -qc "CREATE DATABASE $db"
      trap 'psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS '"$db"' WITH (FORCE)" >/dev/null 2>&1; rm -rf "$work"' EXIT
      rotate "postgres rotation" --database-url "$PG/$db" --data-dir "$work/pg"
      ;;
  esac
done
