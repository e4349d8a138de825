#!/usr/bin/env bash
# Server time per portal page under load on loopback, with wrk: each page at a paced 500 pages/s
# (10 connections, one request each 20 ms), then as fast as it answers; page weights (the page with
# its stylesheet, script and icon, uncompressed and gzip-compressed); and the time a scripted
# participant (form posts like a browser without JavaScript, the code read off the development
# inbox) takes from "register" to an active account.
#
#   bash benches/portal.sh                       # SQLite
#   BACKENDS="sqlite postgres" DURATION=20 bash benches/portal.sh
#   BIN=/tmp/gerbang-before bash benches/portal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-sqlite}
DURATION=${DURATION:-20}
PORT=${PORT:-18081}
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
for backend in $BACKENDS; do
  rm -rf "$work/data"; mkdir -p "$work/data"
  url=""
  if [ "$backend" = postgres ]; then
    pgdb="gerbang_bench_portal_$$"
    dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb"; createdb -h 127.0.0.1 -U postgres "$pgdb"
    url="$PG/$pgdb"
  fi
  # The test captcha lets the scripted participant through; /register is measured with the
  # built-in image captcha on a second run below.
  GERBANG_STORAGE__DATA_DIR="$work/data" GERBANG_STORAGE__DATABASE_URL="$url" \
  GERBANG_SERVER__LISTEN="127.0.0.1:$PORT" GERBANG_REGISTRY__DEMO_PARTICIPANTS=3000 \
  GERBANG_ACCOUNTS__CAPTCHA__MODE=test GERBANG_ACCOUNTS__CAPTCHA__TEST_ANSWER=ok \
  GERBANG_LOG__FILTER=warn "$BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  eval "$(python3 benches/portal_setup.py "http://127.0.0.1:$PORT" "$BIN")"
  echo "== $backend: register to active account (scripted, no JavaScript): ${REGISTERED_SECONDS}s"
  for page in / /login /recover /code /account; do
    cookie=""
    [ "$page" = /code ] && cookie=$CODE_COOKIE
    [ "$page" = /account ] && cookie=$ACCOUNT_COOKIE
    paced=$(PAGE=$page COOKIE=$cookie DELAY_MS=20 wrk -t1 -c10 -d"${DURATION}s" -s benches/wrk/page.lua "http://127.0.0.1:$PORT" | tail -1)
    flat=$(PAGE=$page COOKIE=$cookie DELAY_MS=0 wrk -t1 -c16 -d"${DURATION}s" -s benches/wrk/page.lua "http://127.0.0.1:$PORT" | tail -1)
    echo "== $backend $page paced: $paced"
    echo "== $backend $page flat out: $flat"
  done
  echo "== page weights (bytes: html, with assets, html gzip)"
  for page in / /login /register /recover; do
    python3 - "$PORT" "$page" <<'PY'
import gzip, re, sys, urllib.request
port, page = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
html = urllib.request.urlopen(base + page).read()
assets = sorted(set(re.findall(rb'(?:href|src)="(/assets/[^"]+)"', html)))
total = len(html) + sum(len(urllib.request.urlopen(base + a.decode()).read()) for a in assets)
print(f"{page}: html={len(html)} with_assets={total} html_gzip={len(gzip.compress(html))}")
PY
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  # /register with the built-in captcha: every view draws a new image.
  GERBANG_STORAGE__DATA_DIR="$work/data" GERBANG_STORAGE__DATABASE_URL="$url" \
  GERBANG_SERVER__LISTEN="127.0.0.1:$PORT" GERBANG_LOG__FILTER=warn "$BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  paced=$(PAGE=/register DELAY_MS=20 wrk -t1 -c10 -d"${DURATION}s" -s benches/wrk/page.lua "http://127.0.0.1:$PORT" | tail -1)
  flat=$(PAGE=/register DELAY_MS=0 wrk -t1 -c16 -d"${DURATION}s" -s benches/wrk/page.lua "http://127.0.0.1:$PORT" | tail -1)
  echo "== $backend /register (built-in captcha image) paced: $paced"
  echo "== $backend /register (built-in captcha image) flat out: $flat"
  python3 - "$PORT" <<'PY'
import gzip, re, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
html = urllib.request.urlopen(base + "/register").read()
assets = sorted(set(re.findall(rb'(?:href|src)="(/assets/[^"]+)"', html)))
total = len(html) + sum(len(urllib.request.urlopen(base + a.decode()).read()) for a in assets)
print(f"/register (with its captcha image inline): html={len(html)} with_assets={total} html_gzip={len(gzip.compress(html))}")
PY
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  [ -n "${pgdb:-}" ] && { dropdb -h 127.0.0.1 -U postgres --if-exists "$pgdb"; pgdb=""; }
done
