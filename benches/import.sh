#!/usr/bin/env bash
# Import benchmark (not a test): generate N synthetic participants, import them into a fresh SQLite
# file and into a fresh PostgreSQL database, and report rows/s, wall time and peak memory (RSS).
#
#   bash benches/import.sh                 # N=1000000, both backends
#   N=200000 BACKENDS=sqlite bash benches/import.sh
#   CONTESTED=1 bash benches/import.sh     # also a first load of a file with contested rows
#
# Per backend: a first import (a first load), a re-import of the same file (every row unchanged),
# then a daily sync: the same file with 1 % of the rows changed (status flipped) and 1 % new rows
# appended (N/100 more participants from the same generator seed).
#
# An import into an empty registry is a first load (indexes built at the commit); the re-import of
# the same file goes row by row against the built indexes. With CONTESTED=1 a second file repeats
# one NIK in every 1,000 rows with the card number of the next participant, so a first load must
# settle those rows (gerbang_store::first_load) instead of only building its indexes.
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
"$bin" participants generate --count $((N + N / 100)) --seed 1 -o "$work/grown.csv"
awk -F, -v OFS=, 'NR > 1 && NR % 100 == 0 { if ($8 == "active") $8 = "inactive"; else $8 = "active" } { print }' \
  "$work/grown.csv" > "$work/sync.csv"
rm "$work/grown.csv"
if [ "${CONTESTED:-0}" = 1 ]; then
  awk -F, -v OFS=, 'NR > 2 && NR % 1000 == 0 { print; n = split(previous, p, ","); p[2] = $2;
      line = p[1]; for (i = 2; i <= n; i++) line = line "," p[i]; print line; previous = $0; next }
      { print; previous = $0 }' "$work/participants.csv" > "$work/contested.csv"
fi

measure_file() {
  local file=$1 label=$2; shift 2
  # Exit 1 means some rows were rejected, which the contested file is made to have.
  /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" "$bin" participants import "$work/$file" "$@" \
    2>"$work/time.txt" | sed "s|$work/||" | grep -v ": card_number: " || true
  grep -v 'WARN\|card_number' "$work/time.txt" | tail -1
}
measure() {
  local label=$1; shift
  measure_file participants.csv "$label" "$@"
}

for backend in $BACKENDS; do
  case $backend in
    sqlite)
      measure "sqlite first import" --data-dir "$work/sqlite"
      measure "sqlite re-import (all unchanged)" --data-dir "$work/sqlite"
      measure_file sync.csv "sqlite daily sync (1 in 100 changed, 1 in 100 new)" --data-dir "$work/sqlite"
      ls -l "$work/sqlite/gerbang.sqlite" | awk '{printf "sqlite file: %.0f MB\n", $5/1e6}'
      if [ "${CONTESTED:-0}" = 1 ]; then
        measure_file contested.csv "sqlite first import, contested rows" --data-dir "$work/sqlite-contested"
      fi
      rm -rf "$work/sqlite" "$work/sqlite-contested"
      ;;
    postgres)
      db="gerbang_bench_$$"
      psql "$PG/postgres" -qc "CREATE DATABASE $db"
      trap 'psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS '"$db"' WITH (FORCE)" >/dev/null 2>&1; rm -rf "$work"' EXIT
      measure "postgres first import" --database-url "$PG/$db" --data-dir "$work/pg"
      measure "postgres re-import (all unchanged)" --database-url "$PG/$db" --data-dir "$work/pg"
      measure_file sync.csv "postgres daily sync (1 in 100 changed, 1 in 100 new)" --database-url "$PG/$db" --data-dir "$work/pg"
      if [ "${CONTESTED:-0}" = 1 ]; then
        psql "$PG/postgres" -qc "DROP DATABASE $db WITH (FORCE)" -c "CREATE DATABASE $db"
        measure_file contested.csv "postgres first import, contested rows" --database-url "$PG/$db" --data-dir "$work/pg"
      fi
      ;;
  esac
done
