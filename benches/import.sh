#!/usr/bin/env bash
# Import benchmark (not a test): generate N synthetic participants, import them into a fresh SQLite
# file and into a fresh PostgreSQL database, and report rows/s, wall time and peak memory (RSS).
#
#   bash benches/import.sh                 # N=1000000, both backends
#   N=200000 BACKENDS=sqlite bash benches/import.sh
#
# Loopback only; the PostgreSQL database is created for the run and dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG=${PG:-postgres://postgres@127.0.0.1:5432}

cargo build --release -q -p gerbang
bin=target/release/gerbang
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GERBANG_PRIVACY__KEY=$("$bin" key generate)   # encryption on, as in production

echo "generating $N participants"
/usr/bin/time -f "generate: %e s wall, %M KiB peak RSS" "$bin" participants generate --count "$N" --seed 1 -o "$work/participants.csv"
ls -l "$work/participants.csv" | awk '{printf "csv: %.0f MB\n", $5/1e6}'

measure() {
  local label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" "$bin" participants import "$work/participants.csv" "$@" 2>"$work/time.txt" | sed "s|$work/||"
  grep -v WARN "$work/time.txt" | tail -1
}

for backend in $BACKENDS; do
  case $backend in
    sqlite)
      measure "sqlite first import" --data-dir "$work/sqlite"
      measure "sqlite re-import (all unchanged)" --data-dir "$work/sqlite"
      ls -l "$work/sqlite/gerbang.sqlite" | awk '{printf "sqlite file: %.0f MB\n", $5/1e6}'
      ;;
    postgres)
      db="gerbang_bench_$$"
      psql "$PG/postgres" -qc "CREATE DATABASE $db"
      trap 'psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS '"$db"' WITH (FORCE)" >/dev/null 2>&1; rm -rf "$work"' EXIT
      measure "postgres first import" --database-url "$PG/$db" --data-dir "$work/pg"
      measure "postgres re-import (all unchanged)" --database-url "$PG/$db" --data-dir "$work/pg"
      ;;
  esac
done
