#!/usr/bin/env python3
"""Drives the account API of a running gerbang (captcha in test mode, development inbox):

1. registers every active participant of the CSV, one after the other, timing each registration
   end to end (identify, contact and password, wait for the code in the development inbox, confirm);
2. trusts one device per account (login, step-up code, confirm);
3. writes the NIKs for the login load run (benches/wrk/login.lua).

    accounts_load.py BASE_URL participants.csv niks_out [count]

Prints the registration p50/p99. Standard library only.
"""
import csv
import json
import re
import sys
import time
import urllib.error
import urllib.request

PASSWORD = "Kopi-Tubruk#2026"


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def code_for(base, verification):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, inbox = call(base, "GET", "/dev/inbox.json?limit=20")
        for message in inbox:
            if message["verification"] == verification:
                return re.search(r"\b(\d{6})\b", message["text"]).group(1)
        time.sleep(0.002)
    raise SystemExit(f"no code for {verification} within 30 s")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    base, csv_path, niks_out = sys.argv[1], sys.argv[2], sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    rows = [r for r in csv.DictReader(open(csv_path)) if r["status"] == "active"][:count]
    latencies = []
    niks = []
    for i, row in enumerate(rows):
        started = time.perf_counter()
        status, identified = call(base, "POST", "/v1/accounts/registration", {
            "identifier": row["nik"], "birth_date": row["birth_date"],
            "captcha": {"token": "t", "answer": "ok"}})
        assert status == 200, identified
        status, sent = call(base, "POST", "/v1/accounts/registration/contact", {
            "flow": identified["flow"], "email": f"bench{i}@example.com",
            "password": PASSWORD, "password_confirmation": PASSWORD})
        assert status == 202, sent
        code = code_for(base, sent["verification"]["id"])
        status, created = call(base, "POST", "/v1/accounts/registration/confirm",
                               {"flow": identified["flow"], "code": code})
        assert status == 201, created
        latencies.append((time.perf_counter() - started) * 1000)
        niks.append(row["nik"])
    print(f"registrations={len(latencies)} p50_ms={percentile(latencies, 50):.1f} "
          f"p99_ms={percentile(latencies, 99):.1f} max_ms={max(latencies):.1f}")
    for nik in niks:
        status, login = call(base, "POST", "/v1/accounts/login", {
            "identifier": nik, "password": PASSWORD, "device": {"id": "bench-" + nik}})
        assert status == 202, login
        code = code_for(base, login["verification"]["id"])
        status, session = call(base, "POST", "/v1/accounts/login/confirm",
                               {"flow": login["flow"], "code": code})
        assert status == 200, session
    with open(niks_out, "w") as out:
        out.write("\n".join(niks) + "\n")


if __name__ == "__main__":
    main()
